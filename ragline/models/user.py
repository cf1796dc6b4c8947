from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ragline.models.base import Base, CreatedMixin, IdMixin, utcnow


class User(IdMixin, CreatedMixin, Base):
    """A person, keyed by identity-provider tenant + subject (Entra ``tid`` + ``oid``)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "subject"),)

    tenant_id: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
