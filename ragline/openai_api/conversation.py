"""An OpenAI request as the answer pipeline's input: the client's ``messages`` become the
question, the instructions and the history; what ragline cannot honour is refused with
400, as OpenAI refuses what a model does not support."""

from __future__ import annotations

from pydantic import ValidationError

from ragline.chat.answer import Question, Sampling
from ragline.chat.schemas import ChatRequest
from ragline.errors import BadRequest
from ragline.openai_api.schemas import CompletionRequest, InputMessage
from ragline.rag.llm.base import ChatMessage as Turn


class InvalidRequest(BadRequest):
    """400 ``invalid_request_error`` naming the parameter at fault."""

    def __init__(self, message: str, *, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def refuse_unsupported(body: CompletionRequest) -> None:
    """Tools, several choices, structured output and log probabilities: ragline's answers
    are one grounded text."""
    for name in ("tools", "functions", "tool_choice", "function_call"):
        if getattr(body, name) not in (None, "none"):
            raise InvalidRequest(
                f"Unsupported parameter: '{name}' is not supported: ragline's assistants "
                "call no tools.",
                param=name,
                code="unsupported_parameter",
            )
    if body.logprobs:
        raise InvalidRequest(
            "Unsupported parameter: 'logprobs' is not supported.",
            param="logprobs",
            code="unsupported_parameter",
        )
    if body.n not in (None, 1):
        raise InvalidRequest(
            f"Unsupported value: 'n' is {body.n}; only 1 is supported.",
            param="n",
            code="unsupported_value",
        )
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise InvalidRequest(
            f"Unsupported value: 'response_format' of type {kind!r} is not supported; only "
            "'text' is.",
            param="response_format",
            code="unsupported_value",
        )


def conversation(body: CompletionRequest) -> tuple[Question, list[Turn]]:
    """The question (the last message, from the user) with the client's system messages
    and settings, and the user and assistant turns before it, oldest first."""
    instructions: list[str] = []
    turns: list[tuple[int, Turn]] = []
    for index, message in enumerate(body.messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            instructions.append(text.strip())
        elif message.role == "user" or message.role == "assistant":
            turns.append((index, Turn(message.role, text)))
        else:
            raise InvalidRequest(
                f"Unsupported value: messages of role {message.role!r} are not supported: "
                "ragline's assistants call no tools.",
                param=f"messages[{index}].role",
                code="unsupported_value",
            )
    if not turns or turns[-1][1].role != "user":
        raise InvalidRequest(
            "The last user or assistant message must be from the user: it is the question.",
            param="messages",
        )
    index, last = turns.pop()
    try:
        question = ChatRequest(text=last.content, params=body.params)
    except ValidationError as exc:
        reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise InvalidRequest(
            f"Invalid value for 'messages[{index}].content': {reason}.",
            param=f"messages[{index}].content",
        ) from None
    return (
        Question(
            text=question.text,
            params=question.params,
            instructions="\n\n".join(part for part in instructions if part),
            sampling=_sampling(body),
        ),
        [turn for _, turn in turns if turn.content.strip()],
    )


def _text(message: InputMessage, index: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    for part in message.content:
        if part.type != "text":
            raise InvalidRequest(
                f"Unsupported value: content parts of type {part.type!r} are not supported; "
                "only 'text' is.",
                param=f"messages[{index}].content",
                code="unsupported_value",
            )
    return "".join(part.text or "" for part in message.content)


def _sampling(body: CompletionRequest) -> Sampling:
    limits = [n for n in (body.max_completion_tokens, body.max_tokens) if n is not None]
    return Sampling(
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=min(limits, default=None),
        stop=tuple(sequence for sequence in body.stop or () if sequence),
    )
