from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    model_validator,
)

from ragline.kit.text import FreeText, SingleLine

# Strict as the OpenAPI schema reads: a number is a JSON number (not `false`, not "0.5"),
# a boolean is true or false (not 0), a name has no control character (see kit.text).
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), FreeText]
Context = Annotated[str, StringConstraints(max_length=20_000), FreeText]
ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]
Temperature = Annotated[StrictFloat, Field(ge=0.0, le=2.0)]


class ChatCreate(BaseModel):
    """A new assistant. ``context`` is its system prompt."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    context: Context = ""
    temperature: Temperature = 0.2
    model: ModelName | None = None


class ChatUpdate(BaseModel):
    """Fields to change; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    context: Context | None = None
    temperature: Temperature | None = None
    model: ModelName | None = None
    remove_avatar: StrictBool = False

    @model_validator(mode="after")
    def _no_nulls(self) -> ChatUpdate:
        for name in ("title", "description", "context", "temperature"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep its value")
        return self


class ChatRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    context: str
    temperature: float
    model: str | None
    avatar_url: str | None
    is_favourite: bool
    created_at: datetime
    updated_at: datetime
    last_interacted_at: datetime
