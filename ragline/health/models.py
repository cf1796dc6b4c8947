"""The model providers, reported but never failing readiness: every instance shares them,
so a provider's blip would take all of them out of the load balancer at once, while
everything that does not generate or embed (history, files, favourites) still works.

Remote providers are asked for their model list (one cheap request, no generation) and
must list the configured model; the local models must be loadable from disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from ragline.config import Provider, Settings
from ragline.health.checks import CHECK_TIMEOUT_S, Check, CheckFailed, tls_context
from ragline.lifespan import AppState

_found_artefacts: dict[Path, Path] = {}
"""Models directory → the local embedder's artefact, once found (finding it hashes the
90 MB of weights; afterwards only its presence is checked)."""


def model_checks(state: AppState) -> dict[str, Check]:
    return {"llm": _llm_check(state), "embeddings": _embeddings_check(state.settings)}


def _llm_check(state: AppState) -> Check:
    settings = state.settings
    if settings.llm_provider is Provider.LOCAL:
        from ragline.rag.llm.local import MODEL_NAME, LocalLLM

        check = _advisory(lambda: asyncio.to_thread(_local_llm), "local", MODEL_NAME)
        if isinstance(state.chat.llm, LocalLLM):  # loaded on first use
            return replace(check, details={**check.details, "loaded": state.chat.llm.loaded})
        return check
    if settings.llm_provider is Provider.OLLAMA:
        return _ollama_check(settings, settings.ollama_model or "")
    return _openai_check(settings, settings.llm_provider, settings.ionos_model or "")


def _embeddings_check(settings: Settings) -> Check:
    if settings.embed_provider is Provider.LOCAL:
        from ragline.rag.embeddings.prepare import MODEL_NAME

        models_dir = settings.models_dir
        return _advisory(
            lambda: asyncio.to_thread(_local_embedder, models_dir), "local", MODEL_NAME
        )
    if settings.embed_provider is Provider.OLLAMA:
        return _ollama_check(settings, settings.ollama_embed_model or "")
    return _openai_check(settings, settings.embed_provider, settings.ionos_embed_model or "")


def _advisory(probe: Callable[[], Awaitable[object]], provider: str, model: str) -> Check:
    return Check(probe, required=False, details={"provider": provider, "model": model})


def _local_llm() -> None:
    from ragline.rag.llm.local import shipped_gguf

    shipped_gguf()  # raises when the GGUF is missing


def _local_embedder(models_dir: Path) -> None:
    from ragline.rag.embeddings.prepare import find_local_model

    artefact = _found_artefacts.get(models_dir)
    if artefact is None or not artefact.is_dir():
        _found_artefacts[models_dir] = find_local_model(models_dir)  # raises when missing


def _ollama_check(settings: Settings, model: str) -> Check:
    base_url = f"http://{settings.ollama_host}:{settings.ollama_port}"

    async def listed() -> None:
        body = await _get_json(base_url, "/api/tags", headers={})
        names = {entry.get("model") or entry.get("name") for entry in body.get("models", [])}
        # Ollama names models with their tag; a name without one means `:latest`.
        if model not in names and f"{model}:latest" not in names:
            raise CheckFailed(f"Ollama does not have {model}")

    return _advisory(listed, "ollama", model)


def _openai_check(settings: Settings, provider: Provider, model: str) -> Check:
    key = settings.ionos_api_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base_url = settings.ionos_base_url.rstrip("/")

    async def listed() -> None:
        body = await _get_json(base_url, "/models", headers=headers)
        if model not in {entry.get("id") for entry in body.get("data", [])}:
            raise CheckFailed(f"the provider does not list {model}")

    return _advisory(listed, str(provider), model)


async def _get_json(base_url: str, path: str, *, headers: dict[str, str]) -> dict[str, Any]:
    """One GET of a model list. Plain HTTP rather than the providers' clients, which cost
    ~1 s to import and would stall the event loop (and every other check) the first time."""
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, verify=tls_context()) as client:
        response = await client.get(base_url + path, headers=headers)
    if response.status_code != 200:
        raise CheckFailed(f"the provider answered {response.status_code}")
    body = response.json()
    if not isinstance(body, dict):
        raise CheckFailed("the provider answered something else than a model list")
    return body
