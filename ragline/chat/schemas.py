from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from ragline.kit.strict import JsonInt
from ragline.kit.text import FreeText
from ragline.models import MessageRole, MessageStatus
from ragline.rag.query.claims import ClaimCheck


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class UnsupportedClaim(BaseModel):
    """A number, date or name of the answer that none of its sources holds (nor the
    question or the system prompt): ``text == answer[start:end]``."""

    model_config = ConfigDict(from_attributes=True)

    text: str
    start: int = Field(description="Character offset in the answer where the claim begins.")
    end: int = Field(description="Character offset in the answer where the claim ends.")


def unsupported_claims(check: ClaimCheck) -> list[UnsupportedClaim]:
    return [UnsupportedClaim.model_validate(span) for span in check.unsupported]


SUPPORTED = (
    "True when every number, date and name of the answer appears in its sources, the "
    "question or the system prompt (checked without a model); the others are `unsupported`."
)


class MessageRead(BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    role: MessageRole
    text: str
    sources: list[dict[str, Any]]
    status: MessageStatus
    usage: Usage
    created_at: datetime
    supported: bool | None = Field(
        description=SUPPORTED + " Null when not checked: questions, failed answers, answers "
        "stored before the check existed."
    )
    unsupported: list[UnsupportedClaim]


class FileSelection(BaseModel):
    queried: StrictBool = False


class ChatParams(BaseModel):
    """Request parameters. ``files`` as in the system ragline replaces: ``{file_id:
    {"queried": bool}}``; the files marked ``queried`` (those of them that belong to the
    assistant) restrict retrieval, and none marked means all. Parameters of later features
    are accepted and ignored here."""

    model_config = ConfigDict(extra="allow")

    files: dict[uuid.UUID, FileSelection] = Field(default_factory=dict)

    def selected_files(self) -> set[uuid.UUID] | None:
        chosen = {file_id for file_id, sel in self.files.items() if sel.queried}
        return chosen or None


class ChatRequest(BaseModel):
    text: Annotated[str, FreeText] = Field(min_length=1, max_length=20_000)
    params: ChatParams = Field(default_factory=ChatParams)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty")
        return value


class SearchRequest(BaseModel):
    query: Annotated[str, FreeText] = Field(min_length=1, max_length=2_000)
    k: JsonInt | None = Field(default=None, ge=1, le=100)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    params: ChatParams = Field(default_factory=ChatParams)


class Source(BaseModel):
    chunk_id: str
    file_id: str
    file_name: str
    page: int | None
    section: str | None
    start_char: int | None
    end_char: int | None
    snippet: str
    score: float


class SearchHit(Source):
    text: str
    dense_score: float | None = Field(description="cosine similarity to the query")
    keyword_score: float | None = Field(
        description="BM25 score; null when no query term occurs in the chunk"
    )


class SearchResponse(BaseModel):
    query: str
    results: list[SearchHit]


class ChatAnswer(BaseModel):
    message_id: uuid.UUID
    text: str
    sources: list[Source]
    usage: Usage
    supported: bool = Field(description=SUPPORTED)
    unsupported: list[UnsupportedClaim]
