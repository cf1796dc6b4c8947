from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, field_validator

from ragline.kit.text import SingleLine
from ragline.models import ApiKeyScope
from ragline.models.base import utcnow

KeyName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine
]


class ApiKeyCreate(BaseModel):
    """A new key. Without ``expires_at`` it lasts until revoked; a ``read`` key may only
    use safe methods (GET, HEAD, OPTIONS)."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scope: ApiKeyScope = ApiKeyScope.READ_WRITE
    # With an explicit offset ("2027-01-31T00:00:00Z"): a naive time would be a guess.
    expires_at: AwareDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("expires_at must be in the future")
        return None if value is None else value.astimezone(UTC)


class ApiKeyOut(BaseModel):
    """A key as listings show it: never the secret, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scope: ApiKeyScope
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """The answer to creating a key: the only time ``key`` is shown."""

    key: str
