"""OpenAI wire shapes (the subset clients read), plus ragline's extensions: ``sources``,
``supported`` and ``unsupported``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
)

from ragline.chat.schemas import SUPPORTED, ChatParams, Source, UnsupportedClaim
from ragline.kit.strict import JsonInt


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
    model_config = ConfigDict(extra="allow")  # name, ...

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class CompletionRequest(BaseModel):
    """OpenAI's Chat Completions request; ``model`` is the assistant (chat) id.

    The client's ``messages`` are the conversation (nothing of the assistant's stored
    history is read, nothing is written to it): system and developer messages are added to
    the assistant's system prompt, the last user message is the question (retrieval
    searches for it), the turns before it are the history. ``temperature``, ``top_p``,
    ``max_tokens`` / ``max_completion_tokens`` (capped at ``LLM_MAX_TOKENS``) and ``stop``
    override the assistant's settings. What ragline cannot honour is refused (400): tools,
    ``n`` > 1, a ``response_format`` other than text, ``logprobs``. Other OpenAI fields
    (``user``, ``seed``, penalties, ``metadata``, ...) are accepted and ignored. ``params``
    is ragline's file selection, as on the native endpoint."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[InputMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    # Strict as OpenAI's schema reads: numbers are JSON numbers, booleans true or false.
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_tokens: JsonInt | None = Field(default=None, ge=1)
    max_completion_tokens: JsonInt | None = Field(default=None, ge=1)
    stop: list[str] | None = Field(default=None, max_length=4)
    n: JsonInt | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: StrictBool | None = None
    params: ChatParams = Field(default_factory=ChatParams)

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        """A single sequence, or up to four."""
        return [value] if isinstance(value, str) else value

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


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
    supported: bool = Field(description=SUPPORTED)
    unsupported: list[UnsupportedClaim]


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """The first chunk carries the role, the next ones a piece of text each; the one with
    ``finish_reason`` carries ragline's ``sources``, ``supported`` and ``unsupported``; with
    ``stream_options.include_usage`` a last chunk with no choices carries ``usage``, as
    OpenAI sends it."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    sources: list[Source] | None = None
    supported: bool | None = None
    unsupported: list[UnsupportedClaim] | None = None

    def wire(self, include_usage: bool) -> dict[str, Any]:
        """As OpenAI sends it: ``usage`` (null but on the last chunk) only when asked for,
        deltas without their unset fields; ragline's fields only on the chunk they are on."""
        extensions = ("sources", "supported", "unsupported")
        exclude = {name for name in extensions if getattr(self, name) is None}
        if not include_usage:
            exclude.add("usage")
        data = self.model_dump(exclude=exclude)
        for choice in data["choices"]:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return data
