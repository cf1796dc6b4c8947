"""One typed settings object, read from the environment and `.env`.

Variable names of the system ragline replaces are accepted unchanged (``CLIENT_ID``,
``PG_HOST``, ``LLM_PROVIDER`` ...). Anything unset falls back to the embedded default:
SQLite and embedded stores under ``RAGLINE_DATA_DIR``, no Redis, local models.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import quote

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ragline.limits import LimitSettings

LOCAL_TOP_K = 3
LOCAL_MAX_TOKENS = 64
"""RETRIEVAL_TOP_K and LLM_MAX_TOKENS when unset and the chat model is the embedded one."""
DEFAULT_SECRET_KEY = "ragline-development-secret-change-me"  # noqa: S105 - refused in production
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Provider(StrEnum):
    LOCAL = "local"
    OLLAMA = "ollama"
    OPENAI = "openai"
    IONOS = "ionos"


class QueueBackend(StrEnum):
    SQLITE = "sqlite"
    REDIS = "redis"


class UnsafeConfigurationError(ValueError):
    """A combination of settings that ragline refuses to run with."""


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _async_database_url(url: str) -> str:
    """Map plain URLs (``postgresql://``, ``sqlite:///``) to the async drivers ragline uses."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL is not a URL: {url!r}")
    base = scheme.split("+", 1)[0].lower()
    if base in {"postgres", "postgresql"}:
        return f"postgresql+psycopg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"DATABASE_URL must be PostgreSQL or SQLite, got scheme {scheme!r}")


class Settings(LimitSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- service -------------------------------------------------------------------------
    ragline_env: Environment = Environment.DEVELOPMENT
    ragline_data_dir: Path = Path("data")
    host: str = Field(default="127.0.0.1", validation_alias="RAGLINE_HOST")
    port: int = Field(default=4000, ge=1, le=65535)
    secret_key: str = DEFAULT_SECRET_KEY
    frontend_url: str | None = None
    log_level: str = "INFO"

    # --- primary database ----------------------------------------------------------------
    database_url: str | None = None
    pg_host: str | None = None
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str | None = None
    pg_database: str = "ragline"
    db_echo: bool = False

    # --- Redis (sessions, caching) -------------------------------------------------------
    redis_host: str | None = None
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str | None = None

    # --- identity: Entra ID (unset: the loopback-only development identity) -------------
    client_id: str | None = None
    client_secret: str | None = None
    tenant_id: str | None = None
    redirect_uri: str | None = None
    # Members of any of these groups may sign in and use the API (empty: the whole tenant).
    allowed_groups_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where Entra and Graph live; the tests point them at loopback stand-ins.
    entra_authority_host: str = "https://login.microsoftonline.com"
    graph_base_url: str = "https://graph.microsoft.com"
    # Delegated scope an access token must carry (``scp``), and the app roles (``roles``)
    # that make a caller a ragline user or admin.
    api_scope: str = "access_as_user"
    user_app_role: str = "ragline.user"
    admin_app_role: str = "ragline.admin"
    token_leeway_seconds: int = Field(default=60, ge=0, le=600)
    # The tenant's signing keys are refetched at most this often on an unknown key id.
    jwks_refresh_floor_seconds: float = Field(default=60.0, ge=0.0)
    # Browser sessions (server-side, in Redis): idle and absolute timeouts.
    session_cookie_name: str = "ragline_session"
    session_idle_minutes: int = Field(default=60, ge=1)
    session_absolute_hours: float = Field(default=12.0, gt=0)
    # Profile pictures and groups fetched from Microsoft Graph are cached this long.
    graph_cache_seconds: int = Field(default=24 * 3600, ge=60)
    # Per-user rate limits (limits' notation, e.g. "30/minute"; empty: no limit).

    # --- MySQL / MariaDB (SQL dump import, later issue) ----------------------------------
    mysql_host: str | None = None
    mysql_port: int = 3306
    mysql_user: str = "root"
    mysql_password: str | None = None

    # --- vector store --------------------------------------------------------------------
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_collection_name: str = "ragline"

    # --- models --------------------------------------------------------------------------
    llm_provider: Provider = Provider.LOCAL
    embed_provider: Provider = Provider.LOCAL
    # The OpenAI-compatible provider (IONOS, OpenAI, vLLM, ...), chat and embeddings. The
    # OpenAI SDK's names are read too; the IONOS_* name wins when both are set.
    ionos_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("ionos_api_key", "openai_api_key")
    )
    ionos_base_url: str = Field(
        default="https://openai.inference.de-txl.ionos.com/v1",
        validation_alias=AliasChoices("ionos_base_url", "openai_base_url", "openai_api_base"),
    )
    ionos_model: str | None = Field(
        default=None, validation_alias=AliasChoices("ionos_model", "openai_model")
    )
    ionos_embed_model: str | None = None
    ollama_host: str = "127.0.0.1"
    ollama_port: int = 11434
    ollama_model: str | None = None
    ollama_embed_model: str | None = None
    # Generation: answer length cap (default 512; 64 with the embedded model), the model's
    # context window (timeouts: ragline.limits).
    llm_max_tokens: int = Field(default=512, ge=1, le=32768)
    llm_context_tokens: int = Field(default=4096, ge=512, le=131072)
    # The local model: inference threads (0: OpenVINO's choice, one per core), and
    # whether `ragline serve` loads it in the background at start-up (a few seconds)
    # instead of on the first question.
    llm_threads: int = Field(default=0, ge=0, le=256)
    llm_warm_up: bool = True
    # Another GGUF chat model for the local provider (default: the shipped SmolLM2).
    llm_local_model: Path | None = None
    # Unload the local chat model after this many seconds unused (0: keep it loaded), as
    # Ollama does; the next question loads it again (about a second).
    llm_keep_alive_seconds: float = Field(default=300.0, ge=0)

    # --- retrieval and chat --------------------------------------------------------------
    # Chunks put in the prompt / returned by search by default (5; 3 with the embedded
    # chat model); candidates per retriever.
    retrieval_top_k: int = Field(default=5, ge=1, le=100)
    retrieval_candidates: int = Field(default=50, ge=1, le=1000)
    # Weight of the dense score in the fusion (1 - alpha for the keyword score).
    hybrid_alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    # Threads for searches' blocking work (query embedding, store reads); each search holds
    # up to three at a time, so this bounds the searches in progress (16 concurrent clients
    # were held to ~3 by asyncio's default pool of 6 threads).
    search_threads: int = Field(default=48, ge=3, le=512)
    # Earlier turns kept verbatim in the prompt (model tokens); older ones are condensed.
    history_token_budget: int = Field(default=1024, ge=0, le=131072)

    # --- observability -------------------------------------------------------------------
    phoenix_api_key: str | None = None

    # --- ingestion -----------------------------------------------------------------------
    chunk_size: int = Field(default=250, ge=16, le=8192)
    # Chunks embedded and written per batch, across files (the sink's batch size).
    embed_batch_size: int = Field(default=256, ge=1, le=4096)
    # sqlite: a queue file under the data dir (embedded); redis: REDIS_HOST (production).
    ingest_queue: QueueBackend = QueueBackend.SQLITE
    # Run ingestion workers inside `ragline serve` (required with embedded Chroma).
    embedded_worker: bool = True
    ingest_worker_threads: int = Field(default=2, ge=1, le=64)
    # Load the sentence splitter and embedding model in the background right after start-up
    # (the first upload then waits 0.2 s instead of 2.4 s); false: on first use.
    ingest_warm_up: bool = True
    ingest_max_attempts: int = Field(default=5, ge=1, le=50)
    ingest_retry_base_seconds: float = Field(default=2.0, ge=0.0)
    ingest_lease_seconds: int = Field(default=300, ge=10)
    # Prepared local models (converted once from the packaged weights); default ~/.cache.
    ragline_model_cache: Path | None = None
    embedding_cache_size: int = Field(default=100_000, ge=0)
    embedding_cache_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    @field_validator("llm_provider", "embed_provider", "ragline_env", "ingest_queue", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_groups_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is not None:
            _async_database_url(value)  # raises on an unsupported scheme
        return value

    @field_validator(
        "database_url",
        "redis_host",
        "chroma_host",
        "pg_host",
        "ragline_model_cache",
        "llm_local_model",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="before")
    @classmethod
    def _empty_budget_is_unset(cls, data: Any) -> Any:
        """``LLM_MAX_TOKENS=`` and ``RETRIEVAL_TOP_K=`` (empty) take the provider's default."""
        if isinstance(data, dict):
            for name in ("llm_max_tokens", "retrieval_top_k"):
                value = data.get(name)
                if isinstance(value, str) and not value.strip():
                    del data[name]
        return data

    @model_validator(mode="after")
    def _embedded_model_budget(self) -> Self:
        """The embedded chat model's own defaults, unless set: fewer chunks in the prompt
        and shorter answers (chosen on the docs-qa dev split: 3 chunks and 64 tokens gave
        the best token F1 and the same right answers as 5 chunks and 512 tokens, with a
        third less prompt and a quarter of the answer; the rest of a longer answer from a
        135M model is invented)."""
        if self.llm_provider is Provider.LOCAL:
            if "retrieval_top_k" not in self.model_fields_set:
                self.retrieval_top_k = LOCAL_TOP_K
            if "llm_max_tokens" not in self.model_fields_set:
                self.llm_max_tokens = LOCAL_MAX_TOKENS
        return self

    @model_validator(mode="after")
    def _providers_configured(self) -> Self:
        """Every entry point (serve, worker, the app, the other commands) names a missing
        provider setting when it reads the settings, not at the first question."""
        if problems := self.provider_problems():
            raise ValueError("; ".join(problems))
        return self

    def provider_problems(self) -> list[str]:
        """What the chosen providers need and is unset or empty, one sentence each
        (``LLM_PROVIDER=ollama needs OLLAMA_MODEL``). The local models' files are checked
        by ``ragline serve`` and ``ragline worker`` (``rag.providers.check_local_models``)."""
        base_url = "IONOS_BASE_URL (or OPENAI_BASE_URL)"
        needs: dict[tuple[str, Provider], dict[str, str | None]] = {
            ("LLM_PROVIDER", Provider.OLLAMA): {"OLLAMA_MODEL": self.ollama_model},
            ("LLM_PROVIDER", Provider.OPENAI): {
                base_url: self.ionos_base_url,
                "IONOS_MODEL (or OPENAI_MODEL)": self.ionos_model,
            },
            ("EMBED_PROVIDER", Provider.OLLAMA): {"OLLAMA_EMBED_MODEL": self.ollama_embed_model},
            ("EMBED_PROVIDER", Provider.OPENAI): {
                base_url: self.ionos_base_url,
                "IONOS_EMBED_MODEL": self.ionos_embed_model,
            },
        }
        chosen = (("LLM_PROVIDER", self.llm_provider), ("EMBED_PROVIDER", self.embed_provider))
        problems = []
        for variable, provider in chosen:
            # IONOS is a preset of the OpenAI-compatible provider: the same settings.
            kind = Provider.OPENAI if provider is Provider.IONOS else provider
            required = needs.get((variable, kind), {})
            missing = [name for name, value in required.items() if not (value or "").strip()]
            if missing:
                problems.append(f"{variable}={provider} needs {' and '.join(missing)}")
        return problems

    def refuse_unsafe(self) -> None:
        """Fail fast on combinations ragline must not run with (called at start-up)."""
        # Settings made with ``model_copy(update=...)`` skipped the validators.
        if problems := self.provider_problems():
            raise UnsafeConfigurationError("; ".join(problems))
        if self.is_production:
            problems = []
            if not self.entra_configured:
                problems.append(
                    "no identity provider: set CLIENT_ID, CLIENT_SECRET and TENANT_ID "
                    "(the development identity is only for loopback development)"
                )
            if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
                problems.append("SECRET_KEY is the default or shorter than 32 characters")
            if problems:
                raise UnsafeConfigurationError(
                    "refusing to start in production: " + "; ".join(problems)
                )

        if self.entra_configured:
            missing = [
                name
                for name, value in (
                    ("REDIRECT_URI", self.redirect_uri),
                    ("REDIS_HOST", self.redis_host),
                )
                if not value
            ]
            if missing:
                raise UnsafeConfigurationError(
                    "Entra ID sign-in needs "
                    + " and ".join(missing)
                    + " (the redirect back from Entra, and Redis for the sessions)"
                )
        if self.ingest_queue is QueueBackend.REDIS and not self.redis_host:
            raise UnsafeConfigurationError("INGEST_QUEUE=redis needs REDIS_HOST")
        if not self.embedded_worker and not self.chroma_host:
            raise UnsafeConfigurationError(
                "EMBEDDED_WORKER=false needs a Chroma server (CHROMA_HOST): embedded Chroma "
                "can only be opened by the `ragline serve` process"
            )

    # --- derived values ------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.ragline_env is Environment.PRODUCTION

    @property
    def entra_configured(self) -> bool:
        return bool(self.client_id and self.client_secret and self.tenant_id)

    @property
    def sqlalchemy_url(self) -> str:
        """Async SQLAlchemy URL: DATABASE_URL, else PG_* when PG_HOST is set, else SQLite."""
        if self.database_url:
            return _async_database_url(self.database_url)
        if self.pg_host:
            auth = quote(self.pg_user, safe="")
            if self.pg_password:
                auth += ":" + quote(self.pg_password, safe="")
            return (
                f"postgresql+psycopg://{auth}@{self.pg_host}:{self.pg_port}/"
                f"{quote(self.pg_database, safe='')}"
            )
        return f"sqlite+aiosqlite:///{(self.ragline_data_dir / 'ragline.db').resolve()}"

    @property
    def sync_database_url(self) -> str:
        """The same database for synchronous code (ingestion workers, Alembic checks)."""
        return self.sqlalchemy_url.replace("sqlite+aiosqlite://", "sqlite://", 1)

    @property
    def models_dir(self) -> Path:
        from ragline.rag.embeddings.prepare import default_cache_dir

        return self.ragline_model_cache or default_cache_dir()

    @property
    def redis_url(self) -> str | None:
        if not self.redis_host:
            return None
        auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def entra_issuer(self) -> str:
        """Issuer of the tenant's v2.0 tokens (apps must set accessTokenAcceptedVersion 2)."""
        return f"{self.entra_authority_host.rstrip('/')}/{self.tenant_id}/v2.0"

    @property
    def cookies_secure(self) -> bool:
        """Secure cookies, except for loopback development over plain http."""
        from urllib.parse import urlsplit

        redirect = urlsplit(self.redirect_uri or "")
        return not (redirect.scheme == "http" and is_loopback(redirect.hostname or ""))

    def check_bind(self, host: str) -> None:
        """Refuse a public bind while the development identity is active."""
        if not self.entra_configured and not is_loopback(host):
            raise UnsafeConfigurationError(
                f"refusing to bind {host!r} in development: the development identity lets "
                "anyone act as any user. Bind 127.0.0.1, or set RAGLINE_ENV=production "
                "with an identity provider."
            )


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.refuse_unsafe()
    return settings
