"""Every limit ragline enforces, each a setting (the README's table of limits lists them).

A base of :class:`ragline.config.Settings`, which reads them from the environment and
``.env`` like every other setting.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings


class LimitSettings(BaseSettings):
    # --- database ------------------------------------------------------------------------
    # Connections per process (as many again may overflow for a moment).
    db_pool_size: int = Field(default=10, ge=1)
    # Seconds a request waits for a database connection before it answers 503.
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- rates, per user ------------------------------------------------------------------
    rate_limit_chat: str = "60/minute"
    rate_limit_upload: str = "120/minute"
    rate_limit_signin: str = "20/minute"

    # --- language model ------------------------------------------------------------------
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Answers one user may have in progress at once (chat, stream, /v1); more answer 429.
    # Per `ragline serve` process.
    chat_max_concurrent_per_user: int = Field(default=4, ge=1, le=1000)

    # --- uploads -------------------------------------------------------------------------
    avatar_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    avatar_max_side: int = Field(default=512, ge=16)
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    upload_max_files: int = Field(default=100, ge=1, le=1000)
    # A whole upload request, counted as it streams (413 once past it, whatever its
    # Content-Length says). 256 MiB: one file at UPLOAD_MAX_BYTES with room for others,
    # and the most one request may spool to disk (it was UPLOAD_MAX_BYTES x FILES, 9.8 GiB).
    upload_max_request_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    pdf_max_pages: int = Field(default=2000, ge=1)
    # Files read whole (TXT, Markdown, HTML, CSV); Office files (ZIP archives) by their
    # declared parts: count, uncompressed total, and ratio per part over 1 MiB (zip bombs);
    # spreadsheet cells.
    text_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    zip_max_entries: int = Field(default=10_000, ge=1)
    zip_max_total_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    zip_max_ratio: float = Field(default=100.0, gt=1)
    spreadsheet_max_cells: int = Field(default=2_000_000, ge=1)

    # --- parsing (ragline/rag/ingest/parse/budget.py) -------------------------------------
    # CPU seconds one file's parse may take, in its parse process; over it the file fails
    # ("too dense"), never retried. A 300-page DOCX takes ~1 s, a text-dense PDF ~40 ms a
    # page (raise it for PDFs of over ~700 such pages), a DOCX of 600k tiny paragraphs ~47 s.
    parse_cpu_seconds: int = Field(default=30, ge=1)
    # Memory (MiB) one parse may use above the idle parse process (~140 MiB resident).
    parse_memory_mb: int = Field(default=1024, ge=64)
    # Seconds between runs of the reaper (re-queues files whose worker died or whose
    # message was lost); it runs on a thread of its own, never behind busy ingestion.
    ingest_reap_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_file_fits_a_request(self) -> Self:
        if self.upload_max_request_bytes <= self.upload_max_bytes:
            raise ValueError(
                "UPLOAD_MAX_REQUEST_BYTES must be larger than UPLOAD_MAX_BYTES (a file at the "
                "limit, plus its multipart framing, must fit in one request)"
            )
        return self
