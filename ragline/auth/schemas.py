from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class Me(BaseModel):
    id: uuid.UUID
    tenant_id: str
    subject: str = Field(description="Entra object id (oid)")
    name: str | None
    email: str | None
    groups: list[str]
    roles: list[str] = Field(description="ragline roles: user, admin")
    auth: str = Field(description="session, bearer, api_key or development")
