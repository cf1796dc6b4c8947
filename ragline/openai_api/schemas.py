"""OpenAI wire shapes (the subset clients read), plus ragline's ``sources`` extension."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragline.chat.schemas import ChatParams, ChatRequest, Source


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragline"
    name: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class ContentPart(BaseModel):
    """One part of a multi-part message; only ``text`` parts carry words for ragline."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text or "" for part in self.content if part.type == "text")


class CompletionRequest(BaseModel):
    """``model`` is the assistant (chat) id. The other OpenAI fields (temperature,
    max_tokens, stream_options, user, ...) are accepted and ignored: the assistant's own
    settings apply. ``params`` is ragline's file selection, as on the native endpoint."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[InputMessage] = Field(min_length=1)
    stream: bool = False
    params: ChatParams = Field(default_factory=ChatParams)

    @model_validator(mode="after")
    def _has_question(self) -> Self:
        try:
            self.chat_request()
        except ValidationError as exc:
            raise ValueError(f"the last user message: {exc.errors()[0]['msg']}") from None
        return self

    def chat_request(self) -> ChatRequest:
        """The last user message as the question; ragline's stored history is the memory."""
        users = [message for message in self.messages if message.role == "user"]
        if not users:
            raise ValueError("messages hold no user message")
        return ChatRequest(text=users[-1].text(), params=self.params)


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    sources: list[Source]


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """Every chunk but the last carries a piece of text; the last (``finish_reason``
    "stop") carries ``usage`` and ``sources`` instead."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    sources: list[Source] | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude={"sources"} if self.sources is None else set())
