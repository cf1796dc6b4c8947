"""Every limit ragline enforces, each a setting (the README's table of limits lists them).

A base of :class:`ragline.config.Settings`, which reads them from the environment and
``.env`` like every other setting.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class LimitSettings(BaseSettings):
    # --- database ------------------------------------------------------------------------
    # Connections per process (as many again may overflow for a moment).
    db_pool_size: int = Field(default=10, ge=1)

    # --- rates, per user ------------------------------------------------------------------
    rate_limit_chat: str = "60/minute"
    rate_limit_upload: str = "120/minute"
    rate_limit_signin: str = "20/minute"

    # --- language model ------------------------------------------------------------------
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0)

    # --- uploads -------------------------------------------------------------------------
    avatar_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    avatar_max_side: int = Field(default=512, ge=16)
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    upload_max_files: int = Field(default=100, ge=1, le=1000)
    pdf_max_pages: int = Field(default=2000, ge=1)
