from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class FavouriteRead(BaseModel):
    chat_id: uuid.UUID
    created_at: datetime
