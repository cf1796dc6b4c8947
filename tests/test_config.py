"""Settings: the replaced system's variable names, conventions, and unsafe combinations."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, ValidationError

from ragline.config import (
    DEFAULT_SECRET_KEY,
    Provider,
    Settings,
    UnsafeConfigurationError,
)

LEGACY_NAMES = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TENANT_ID",
    "REDIRECT_URI",
    "SECRET_KEY",
    "REDIS_HOST",
    "REDIS_PORT",
    "DATABASE_URL",
    "PG_HOST",
    "PG_PORT",
    "PG_USER",
    "PG_PASSWORD",
    "MYSQL_HOST",
    "MYSQL_PORT",
    "MYSQL_USER",
    "MYSQL_PASSWORD",
    "CHROMA_COLLECTION_NAME",
    "PHOENIX_API_KEY",
    "LLM_PROVIDER",
    "IONOS_API_KEY",
    "IONOS_BASE_URL",
    "PORT",
    "FRONTEND_URL",
    "ALLOWED_GROUPS_IDS",
    "OLLAMA_HOST",
    "OLLAMA_PORT",
    "OLLAMA_MODEL",
    "OLLAMA_EMBED_MODEL",
    "CHROMA_HOST",
    "CHROMA_PORT",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    openai_names = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_MODEL"]
    others = ["RAGLINE_ENV", "EMBED_PROVIDER", "PG_DATABASE", "IONOS_MODEL", "IONOS_EMBED_MODEL"]
    for name in [*LEGACY_NAMES, *openai_names, *others]:
        monkeypatch.delenv(name, raising=False)


def make(**env: str) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        settings.refuse_unsafe()
        return settings


def test_embedded_default(tmp_path: pytest.TempPathFactory) -> None:
    settings = make(RAGLINE_DATA_DIR="/srv/ragline")
    assert settings.sqlalchemy_url == "sqlite+aiosqlite:////srv/ragline/ragline.db"
    assert settings.redis_url is None
    assert settings.port == 4000
    assert settings.llm_provider is Provider.LOCAL and settings.embed_provider is Provider.LOCAL
    assert not settings.is_production


def test_every_legacy_name_is_read() -> None:
    values = {name: f"v-{name.lower()}" for name in LEGACY_NAMES}
    values |= {
        "REDIS_PORT": "6380",
        "PG_PORT": "5433",
        "MYSQL_PORT": "3307",
        "PORT": "4100",
        "OLLAMA_PORT": "11435",
        "CHROMA_PORT": "8001",
        "LLM_PROVIDER": "OLLAMA",  # its model, OLLAMA_MODEL, is one of the names
        "DATABASE_URL": "postgresql://u:p@db:5432/x",
        "ALLOWED_GROUPS_IDS": "g1, g2,,g3",
    }
    settings = make(**values)
    for name, value in values.items():
        attribute = getattr(settings, name.lower())
        if name == "LLM_PROVIDER":
            assert attribute is Provider.OLLAMA
        elif name == "ALLOWED_GROUPS_IDS":
            assert attribute == ["g1", "g2", "g3"]
        else:
            assert str(attribute) == value, name


def test_provider_names_are_case_insensitive() -> None:
    assert make(LLM_PROVIDER="Ollama", OLLAMA_MODEL="m").llm_provider is Provider.OLLAMA
    assert make(EMBED_PROVIDER="OpenAI", IONOS_EMBED_MODEL="e").embed_provider is Provider.OPENAI
    with pytest.raises(ValueError, match="llm_provider"):
        make(LLM_PROVIDER="gpt-cloud")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"LLM_PROVIDER": "ollama"}, "LLM_PROVIDER=ollama needs OLLAMA_MODEL"),
        ({"EMBED_PROVIDER": "Ollama"}, "EMBED_PROVIDER=ollama needs OLLAMA_EMBED_MODEL"),
        ({"LLM_PROVIDER": "openai"}, "LLM_PROVIDER=openai needs IONOS_MODEL (or OPENAI_MODEL)"),
        (
            {"LLM_PROVIDER": "ionos", "IONOS_MODEL": " "},  # blank is unset
            "LLM_PROVIDER=ionos needs IONOS_MODEL (or OPENAI_MODEL)",
        ),
        ({"EMBED_PROVIDER": "IONOS"}, "EMBED_PROVIDER=ionos needs IONOS_EMBED_MODEL"),
        (
            {"EMBED_PROVIDER": "openai", "IONOS_EMBED_MODEL": "e", "IONOS_BASE_URL": ""},
            "EMBED_PROVIDER=openai needs IONOS_BASE_URL (or OPENAI_BASE_URL)",
        ),
        (
            {"LLM_PROVIDER": "ollama", "EMBED_PROVIDER": "openai"},
            "LLM_PROVIDER=ollama needs OLLAMA_MODEL; EMBED_PROVIDER=openai needs IONOS_EMBED_MODEL",
        ),
    ],
)
def test_a_provider_without_its_settings_is_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make(**env)
    assert [error["msg"] for error in refused.value.errors()] == [f"Value error, {problem}"]


def test_providers_with_their_settings_and_copies_that_skipped_validation() -> None:
    ollama = make(
        LLM_PROVIDER="ollama",
        OLLAMA_MODEL="llama3.2",
        EMBED_PROVIDER="ollama",
        OLLAMA_EMBED_MODEL="nomic-embed-text",
    )
    remote = make(
        LLM_PROVIDER="ionos", OPENAI_MODEL="m", EMBED_PROVIDER="openai", IONOS_EMBED_MODEL="e"
    )
    assert ollama.provider_problems() == remote.provider_problems() == []
    # model_copy(update=...) skips validators: start-up (refuse_unsafe, create_app) catches it
    copy = make().model_copy(update={"llm_provider": Provider.OLLAMA})
    with pytest.raises(UnsafeConfigurationError, match="LLM_PROVIDER=ollama needs OLLAMA_MODEL"):
        copy.refuse_unsafe()
    from ragline.main import create_app

    with pytest.raises(UnsafeConfigurationError, match="LLM_PROVIDER=ollama needs OLLAMA_MODEL"):
        create_app(copy)


def test_database_url_wins_over_pg_parts() -> None:
    settings = make(DATABASE_URL="postgres://a@h/db", PG_HOST="other")
    assert settings.sqlalchemy_url == "postgresql+psycopg://a@h/db"
    built = make(PG_HOST="pg.internal", PG_PORT="6543", PG_USER="rag", PG_PASSWORD="p@ss:/%")
    assert (
        built.sqlalchemy_url == "postgresql+psycopg://rag:p%40ss%3A%2F%25@pg.internal:6543/ragline"
    )
    assert make(PG_HOST="h", PG_DATABASE="other").sqlalchemy_url.endswith("/other")
    assert (
        make(DATABASE_URL="sqlite:////tmp/x.db").sqlalchemy_url == "sqlite+aiosqlite:////tmp/x.db"
    )
    with pytest.raises(ValueError, match="PostgreSQL or SQLite"):
        make(DATABASE_URL="mysql://root@h/db")


def test_redis_url() -> None:
    assert make(REDIS_HOST="cache", REDIS_PORT="6380").redis_url == "redis://cache:6380/0"


def test_production_refuses_unsafe_combinations() -> None:
    strong = "k" * 40
    with pytest.raises(UnsafeConfigurationError, match="no identity provider"):
        make(RAGLINE_ENV="production", SECRET_KEY=strong)
    with pytest.raises(UnsafeConfigurationError, match="SECRET_KEY"):
        make(RAGLINE_ENV="production", CLIENT_ID="c", CLIENT_SECRET="s", TENANT_ID="t")
    with pytest.raises(UnsafeConfigurationError, match="SECRET_KEY"):
        make(
            RAGLINE_ENV="Production",
            CLIENT_ID="c",
            CLIENT_SECRET="s",
            TENANT_ID="t",
            SECRET_KEY=DEFAULT_SECRET_KEY,
        )
    entra = {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "TENANT_ID": "t"}
    with pytest.raises(UnsafeConfigurationError, match="REDIRECT_URI and REDIS_HOST"):
        make(RAGLINE_ENV="production", SECRET_KEY=strong, **entra)
    ok = make(
        RAGLINE_ENV="production",
        SECRET_KEY=strong,
        REDIRECT_URI="https://ragline.example/redirect",
        REDIS_HOST="cache",
        **entra,
    )
    assert ok.is_production and ok.cookies_secure
    assert ok.entra_issuer == "https://login.microsoftonline.com/t/v2.0"
    ok.check_bind("0.0.0.0")  # public bind is fine in production


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_development_refuses_public_bind(host: str) -> None:
    with pytest.raises(UnsafeConfigurationError, match="refusing to bind"):
        make().check_bind(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_development_allows_loopback(host: str) -> None:
    make().check_bind(host)


def test_env_example_documents_every_setting_and_loads() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / ".env.example"
    documented = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    fields = {
        _env_name(name, field.validation_alias) for name, field in Settings.model_fields.items()
    }
    assert fields == documented
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    settings.refuse_unsafe()
    assert settings.redis_url is None and settings.sqlalchemy_url.startswith("sqlite+aiosqlite")


def _env_name(name: str, alias: object) -> str:
    """The variable a field is documented under: its alias, the first of its choices."""
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    return (alias if isinstance(alias, str) else name).upper()


def test_openai_sdk_names_for_the_openai_compatible_provider() -> None:
    openai_names = {
        "OPENAI_API_KEY": "sk-openai",
        "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
        "OPENAI_MODEL": "gpt-test",
    }
    settings = make(**openai_names)
    assert (settings.ionos_api_key, settings.ionos_base_url, settings.ionos_model) == (
        "sk-openai",
        "http://127.0.0.1:8000/v1",
        "gpt-test",
    )
    assert make(OPENAI_API_BASE="http://old-name/v1").ionos_base_url == "http://old-name/v1"
    both = make(**openai_names, IONOS_API_KEY="ionos-key", IONOS_BASE_URL="http://ionos/v1")
    assert (both.ionos_api_key, both.ionos_base_url, both.ionos_model) == (
        "ionos-key",  # the IONOS_* name wins
        "http://ionos/v1",
        "gpt-test",
    )


@pytest.mark.parametrize(
    ("env", "top_k", "max_tokens"),
    [
        ({}, 3, 64),  # the embedded model's own budget
        ({"RETRIEVAL_TOP_K": "", "LLM_MAX_TOKENS": ""}, 3, 64),  # empty: unset
        ({"RETRIEVAL_TOP_K": "5", "LLM_MAX_TOKENS": "512"}, 5, 512),  # set: kept
        ({"LLM_PROVIDER": "ollama", "OLLAMA_MODEL": "llama3.1:8b"}, 5, 512),
        ({"LLM_PROVIDER": "openai", "OPENAI_MODEL": "m", "LLM_MAX_TOKENS": "100"}, 5, 100),
    ],
)
def test_answer_budget_defaults_follow_the_chat_model(
    env: dict[str, str], top_k: int, max_tokens: int
) -> None:
    settings = make(**env)
    assert (settings.retrieval_top_k, settings.llm_max_tokens) == (top_k, max_tokens)
