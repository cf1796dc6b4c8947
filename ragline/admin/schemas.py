from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class Owner(BaseModel):
    id: uuid.UUID
    tenant_id: str
    name: str | None
    email: str | None


class AdminChatRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    model: str | None
    owner: Owner
    created_at: datetime
    last_interacted_at: datetime
