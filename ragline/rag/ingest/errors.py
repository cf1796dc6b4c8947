"""Why a file could not be ingested. ``reason`` is written for the user who uploaded it.

The web layer maps these to its own typed errors; this package knows nothing of HTTP.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every ingestion refusal; ``reason`` is a short sentence shown to users."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedFile(IngestError):
    """Not a type we accept: empty, unknown binary, renamed file, legacy Office format."""


class UnsafeFile(IngestError):
    """Would cost too much to open: zip bomb, too many pages, entries or cells."""


class ParseError(IngestError):
    """An accepted type that cannot be read: encrypted, truncated, corrupt, or no text."""
