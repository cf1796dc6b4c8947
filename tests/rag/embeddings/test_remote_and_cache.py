"""The ollama and openai embedding providers over real HTTP on loopback, and the embedding
cache in real Redis."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from redis import Redis

from ragline.config import Provider, Settings
from ragline.rag.embeddings.base import EmbeddingError
from ragline.rag.embeddings.cache import CachedEmbedder, RedisCache, cache_key
from ragline.rag.providers import build_base_embedder, build_embedder
from tests.conftest import REDIS_HOST, REDIS_PORT
from tests.fake_providers import embedding_server, fake_vector

TEXTS = ["the heron nests by the lake", "tide tables for the harbour", "a third text"]


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_ollama_embed_wire_format() -> None:
    with embedding_server(dimension=48) as server:
        host, port = server.url.removeprefix("http://").split(":")
        embedder = build_base_embedder(
            _settings(
                embed_provider="Ollama",
                ollama_host=host,
                ollama_port=int(port),
                ollama_embed_model="nomic-embed-text",
            )
        )
        vectors = embedder.embed(TEXTS)
        assert embedder.model_name == "nomic-embed-text"
        assert embedder.dimension == 48
    assert vectors == [fake_vector(t, 48) for t in TEXTS]
    request = server.requests[0]
    assert request["path"] == "/api/embed"
    assert request["body"]["model"] == "nomic-embed-text" and request["body"]["input"] == TEXTS


def test_openai_compatible_wire_format_with_key() -> None:
    with embedding_server(dimension=32, api_key="secret-key") as server:
        embedder = build_base_embedder(
            _settings(
                embed_provider="IONOS",
                ionos_base_url=f"{server.url}/v1",
                ionos_api_key="secret-key",
                ionos_embed_model="BAAI/bge-m3",
            )
        )
        assert embedder.embed(TEXTS) == [fake_vector(t, 32) for t in TEXTS]  # reordered by index
        assert server.requests[0]["auth"] == "Bearer secret-key"
        # floats, not the client's default base64, which not every compatible server speaks
        assert server.requests[0]["body"]["encoding_format"] == "float"
        wrong = build_base_embedder(
            _settings(
                embed_provider="openai",
                ionos_base_url=f"{server.url}/v1",
                ionos_api_key="nope",
                ionos_embed_model="m",
            )
        )
        with pytest.raises(EmbeddingError, match="401"):
            wrong.embed(TEXTS)


def test_provider_down_is_an_embedding_error() -> None:
    from tests.services import free_port

    embedder = build_base_embedder(
        _settings(embed_provider="ollama", ollama_port=free_port(), ollama_embed_model="m")
    )
    with pytest.raises(EmbeddingError, match="unreachable"):
        embedder.embed(["x"])


def test_missing_model_names_fail_clearly() -> None:
    with pytest.raises(ValueError, match="OLLAMA_EMBED_MODEL"):
        build_base_embedder(_settings(embed_provider=Provider.OLLAMA))
    with pytest.raises(ValueError, match="IONOS_EMBED_MODEL"):
        build_base_embedder(_settings(embed_provider=Provider.OPENAI))


def test_redis_cache_embeds_each_text_once() -> None:
    model = f"test-model-{uuid.uuid4().hex}"
    redis = Redis(host=REDIS_HOST, port=REDIS_PORT)
    with embedding_server(dimension=16) as server:
        base = build_base_embedder(
            _settings(
                embed_provider="openai", ionos_base_url=f"{server.url}/v1", ionos_embed_model=model
            )
        )
        cached = CachedEmbedder(base, RedisCache(redis, ttl_seconds=120))
        try:
            first = cached.embed(TEXTS)
            assert redis.exists(*[cache_key(model, t) for t in TEXTS]) == len(TEXTS)
            assert 0 < redis.ttl(cache_key(model, TEXTS[0])) <= 120
            again = cached.embed([TEXTS[1], "new text", TEXTS[0]])
        finally:
            redis.delete(*[cache_key(model, t) for t in [*TEXTS, "new text"]])
    embedded_inputs = [text for request in server.requests for text in request["body"]["input"]]
    assert embedded_inputs == [*TEXTS, "new text"]  # the cached texts were not sent again
    assert np.allclose(again[0], first[1], atol=1e-6) and np.allclose(again[2], first[0], atol=1e-6)


def test_build_embedder_uses_redis_cache_when_configured() -> None:
    with embedding_server() as server:
        embedder = build_embedder(
            _settings(
                embed_provider="openai",
                ionos_base_url=f"{server.url}/v1",
                ionos_embed_model="m",
                redis_host=REDIS_HOST,
                redis_port=REDIS_PORT,
            )
        )
    assert isinstance(embedder, CachedEmbedder) and isinstance(embedder.cache, RedisCache)
