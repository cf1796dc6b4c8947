"""Where uploaded bytes live: a small interface, a local-directory implementation.

Keys are chosen by the server (random hex), never derived from the client's filename, so
no upload can name a path. For workers on other machines, point ``RAGLINE_DATA_DIR`` (or
at least its ``files/`` directory) at a shared mount; an object store would implement the
same three methods.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

COPY_CHUNK = 1024 * 1024


class FileTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.reason = f"The file is larger than {limit} bytes."
        super().__init__(self.reason)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class FileStorage(Protocol):
    def put(self, source: BinaryIO, *, max_bytes: int) -> StoredFile:
        """Copy ``source`` in chunks, hashing as it goes; ``FileTooLarge`` past the limit."""
        ...

    def path(self, key: str) -> Path:
        """A local path to read the file from (workers parse from it)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""
        ...


def hash_stream(source: BinaryIO, *, max_bytes: int) -> tuple[str, int]:
    """sha256 and size of a seekable stream, read in chunks; rewinds it afterwards."""
    digest = hashlib.sha256()
    size = 0
    while block := source.read(COPY_CHUNK):
        size += len(block)
        if size > max_bytes:
            raise FileTooLarge(max_bytes)
        digest.update(block)
    source.seek(0)
    return digest.hexdigest(), size


class LocalFileStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._incoming = self.root / "incoming"
        self._objects = self.root / "objects"
        self._incoming.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)

    def put(self, source: BinaryIO, *, max_bytes: int) -> StoredFile:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._incoming)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := source.read(COPY_CHUNK):
                    size += len(block)
                    if size > max_bytes:
                        raise FileTooLarge(max_bytes)
                    digest.update(block)
                    out.write(block)
            key = secrets.token_hex(16)
            target = self.path(key)
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredFile(key=key, size=size, sha256=digest.hexdigest())

    def path(self, key: str) -> Path:
        if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a storage key: {key!r}")
        return self._objects / key[:2] / key

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def clear_incoming(self) -> None:
        """Remove partial uploads left by a crash (called at start-up)."""
        shutil.rmtree(self._incoming, ignore_errors=True)
        self._incoming.mkdir(parents=True, exist_ok=True)
