"""Embeddings from a server, through the official clients the chat models use too: Ollama's
``/api/embed`` (``ollama.Client.embed``) or an OpenAI-compatible ``/v1/embeddings``
(``openai.OpenAI().embeddings.create``; IONOS is one). Token counts for chunk sizing use the
local MiniLM tokenizer as an estimate, since remote models do not expose theirs.

Each ``embed`` call sends its texts as one request (the callers batch: the ingestion sink
up to ``EMBED_BATCH_SIZE``, the query batcher a few queries); every failure is an
:class:`EmbeddingError`, which the ingestion job retries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import ollama
import openai

from ragline.rag.embeddings.base import EmbeddingError, Tokenizer

# What ollama's client lets through when the server cannot be reached or answers badly:
# it turns connect errors into ConnectionError, HTTP errors into ResponseError, and leaves
# timeouts and broken bodies to httpx and pydantic (ValueError).
_OLLAMA_UNREACHABLE = (ConnectionError, httpx.TransportError)


class _RemoteEmbedder:
    def __init__(
        self,
        *,
        model: str,
        tokenizer: Tokenizer,
        max_tokens: int,
        timeout: float,
        connect_timeout: float = 5.0,
        dimension: int | None = None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._dimension = dimension
        self._timeout = timeout
        self._connect_timeout = connect_timeout

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension probe"])[0])
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._embed(list(texts))
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"the embedding server answered {len(vectors)} embeddings for {len(texts)} inputs"
            )
        return vectors

    def _embed(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


class OllamaEmbedder(_RemoteEmbedder):
    """``POST {base}/api/embed`` with ``{"model", "input": [...], "truncate": true}``."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = ollama.Client(
            host=base_url, timeout=httpx.Timeout(self._timeout, connect=self._connect_timeout)
        )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embed(model=self._model, input=texts, truncate=True)
        except ollama.ResponseError as exc:
            raise EmbeddingError(
                f"embedding server answered {exc.status_code}: {exc.error[:200]}"
            ) from exc
        except _OLLAMA_UNREACHABLE as exc:
            raise EmbeddingError(f"embedding server unreachable: {exc}") from exc
        except ValueError as exc:  # a body that is not Ollama's answer
            raise EmbeddingError(f"Ollama answered something else than embeddings: {exc}") from exc
        return [list(map(float, vector)) for vector in response.embeddings]


class OpenAIEmbedder(_RemoteEmbedder):
    """``POST {base}/embeddings`` (base ends in ``/v1``) with a bearer key; floats asked
    for explicitly (the client would ask for base64, which not every compatible server
    speaks)."""

    def __init__(
        self, *, base_url: str, api_key: str | None, max_retries: int = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=openai.Timeout(self._timeout, connect=self._connect_timeout),
            max_retries=max_retries,
        )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(
                model=self._model, input=texts, encoding_format="float"
            )
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"embedding server answered {exc.status_code}: {exc.message[:200]}"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingError(f"embedding server unreachable: {exc}") from exc
        except (openai.APIError, ValueError) as exc:
            raise EmbeddingError(f"the embedding server answered badly: {exc}") from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        return [list(map(float, item.embedding)) for item in ordered]
