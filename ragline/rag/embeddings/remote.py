"""Embeddings from a server: Ollama's ``/api/embed`` or an OpenAI-compatible ``/v1/embeddings``
(IONOS is one). Token counts for chunk sizing use the local MiniLM tokenizer as an estimate,
since remote models do not expose theirs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ragline.rag.embeddings.base import EmbeddingError, Tokenizer


class _RemoteEmbedder:
    def __init__(
        self,
        *,
        model: str,
        tokenizer: Tokenizer,
        max_tokens: int,
        timeout: float,
        dimension: int | None = None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._dimension = dimension
        self._timeout = timeout

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
        raise NotImplementedError

    def _post(self, client: httpx.Client, url: str, body: dict[str, Any]) -> Any:
        try:
            response = client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embedding server unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise EmbeddingError(
                f"embedding server answered {response.status_code}: {response.text[:200]}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise EmbeddingError("embedding server answered with invalid JSON") from exc


class OllamaEmbedder(_RemoteEmbedder):
    """``POST {base}/api/embed`` with ``{"model", "input": [...]}`` → ``{"embeddings": [...]}``."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = httpx.Client(base_url=base_url, timeout=self._timeout)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        body = self._post(
            self._client,
            "/api/embed",
            {"model": self._model, "input": list(texts), "truncate": True},
        )
        vectors = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise EmbeddingError("Ollama answered without one embedding per input")
        return [list(map(float, v)) for v in vectors]


class OpenAIEmbedder(_RemoteEmbedder):
    """``POST {base}/embeddings`` (base ends in ``/v1``) with a bearer key."""

    def __init__(self, *, base_url: str, api_key: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", timeout=self._timeout, headers=headers
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        body = self._post(self._client, "embeddings", {"model": self._model, "input": list(texts)})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise EmbeddingError("embedding server answered without one embedding per input")
        ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        return [list(map(float, item["embedding"])) for item in ordered]
