"""API keys: long-lived credentials for scripts, CI and OpenAI-compatible clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ragline.models.base import Base, CreatedMixin, IdMixin, OwnedMixin, str_enum
from ragline.models.enums import ApiKeyScope


class ApiKey(IdMixin, CreatedMixin, OwnedMixin, Base):
    """A key that acts as its owner (``owner_id``). The key itself is never stored.

    ``key_hash`` is the SHA-256 hex digest of the whole key. A fast, unsalted hash is
    right here, unlike for passwords: keys carry 256 random bits, so there is nothing to
    guess or precompute, and the digest is what the key is looked up by. A revoked key
    keeps its row (``revoked_at``) for the record.
    """

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(100))
    # The key's first characters ("rl_AbCd1234"), enough to recognise it in a listing.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[ApiKeyScope] = mapped_column(str_enum(ApiKeyScope, "api_key_scope"))
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
