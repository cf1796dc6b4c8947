"""``ragline serve | worker | ingest | reindex | models prepare | eval retrieval|answers |
db upgrade|downgrade|current``."""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from ragline.config import Settings, UnsafeConfigurationError, get_settings
from ragline.kit.memory import limit_arenas
from ragline.observability.logging import configure_logging

app = typer.Typer(help="ragline: self-hostable RAG backend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="Local models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
eval_app = typer.Typer(help="Quality evaluations.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

# The options of every command that talks to a running server.
ServerUrl = Annotated[
    str | None,
    typer.Option(
        help="A running ragline server (default RAGLINE_URL, else http://127.0.0.1:PORT, "
        "port 4000)."
    ),
]
DevUser = Annotated[str | None, typer.Option(help="Development identity (X-Ragline-Dev-User).")]
BearerToken = Annotated[str | None, typer.Option(envvar="RAGLINE_TOKEN", help="Bearer token.")]
# Global options, set by the app's callback before any command runs (Typer's pattern).
_options = {"debug": False}


def _version() -> str:
    """The installed distribution's version (``ragline.__version__`` when run from a tree
    that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragline")
    except PackageNotFoundError:
        from ragline import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ragline {_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show a failure's traceback instead of one line."),
    ] = False,
) -> None:
    _options["debug"] = debug


def _fail(exc: Exception, code: int) -> NoReturn:
    """``ragline: <what is wrong>`` on one line and exit ``code``; ``ragline --debug``
    raises ``exc`` instead (its traceback)."""
    if _options["debug"]:
        raise exc
    message = _validation_problems(exc) if isinstance(exc, ValidationError) else str(exc)
    typer.echo(f"ragline: {message}", err=True)
    raise typer.Exit(code) from exc


def _validation_problems(exc: ValidationError) -> str:
    """``PORT: Input should be a valid integer; LLM_PROVIDER=ollama needs OLLAMA_MODEL``."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(map(str, error["loc"])).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _settings() -> Settings:
    try:
        return get_settings()
    except (UnsafeConfigurationError, ValidationError) as exc:
        _fail(exc, 2)


def _check_local_models(settings: Settings, *, llm: bool = True) -> None:
    from ragline.rag.embeddings.prepare import LocalModelMissing
    from ragline.rag.llm.base import LLMUnavailable
    from ragline.rag.providers import check_local_models

    try:
        check_local_models(settings, llm=llm)
    except (LocalModelMissing, LLMUnavailable) as exc:
        _fail(exc, 2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default RAGLINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT, 4000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with Hypercorn."""
    from hypercorn.config import Config
    from hypercorn.run import run

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    try:
        settings.check_bind(host)
    except UnsafeConfigurationError as exc:
        _fail(exc, 2)
    if workers > 1 and (settings.embedded_worker or not settings.chroma_host):
        typer.echo(
            "ragline: --workers > 1 needs CHROMA_HOST and EMBEDDED_WORKER=false (embedded "
            "stores and the embedded ingestion worker belong to one process)",
            err=True,
        )
        raise typer.Exit(2)
    _check_local_models(settings)
    configure_logging(settings.log_level)
    limit_arenas()
    config = Config()
    config.application_path = "ragline.main:create_app()"
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    # One process runs in-process (workers=0 in Hypercorn's terms); more are spawned.
    config.workers = 0 if workers == 1 else workers
    # uvloop's event loop: ~10% less CPU per search request than asyncio's (measured,
    # benchmarks/search closed loop: 22.7-24.4 vs 25.5-27.0 ms per request).
    config.worker_class = "uvloop"
    config.accesslog = "-"
    config.errorlog = "-"
    config.loglevel = settings.log_level
    # What the imports made (~300k objects) lives as long as the process; frozen, the
    # collector stops walking it. A full collection otherwise took ~140-170 ms, a pause in
    # whichever requests were running (benchmarks/search's p99). Only the server does
    # this: a process that opens many apps (tests) must let the collector free them.
    importlib.import_module("ragline.main")
    gc.freeze()
    sys.exit(run(config))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    from ragline.db import migrate  # Alembic: ~1 s of imports the other commands skip

    migrate.upgrade(_settings().sqlalchemy_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target, e.g. -1 or base.")) -> None:
    """Revert migrations down to REVISION."""
    from ragline.db import migrate

    migrate.downgrade(_settings().sqlalchemy_url, revision)


@db_app.command("current")
def db_current() -> None:
    """Show the database's current revision."""
    from ragline.db import migrate

    migrate.current(_settings().sqlalchemy_url)


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(help="Worker threads (INGEST_WORKER_THREADS).")
    ] = None,
) -> None:
    """Run ingestion workers (production: a Chroma server and the queue's broker)."""
    import signal
    import threading

    settings = _settings()  # before the imports below (seconds): a bad setting fails fast

    from ragline.documents.queue import requeue_unfinished, start_consumer, stop_consumer
    from ragline.documents.runtime import open_documents, worker_context

    configure_logging(settings.log_level)
    limit_arenas()
    if not settings.chroma_host:
        typer.echo(
            "ragline: embedded Chroma belongs to `ragline serve`, which runs the workers "
            "itself; `ragline worker` needs CHROMA_HOST",
            err=True,
        )
        raise typer.Exit(2)
    _check_local_models(settings, llm=False)
    documents = open_documents(settings)
    context = worker_context(settings, documents)
    requeue_unfinished(context, single_process=False)
    consumer = start_consumer(context, threads=threads or settings.ingest_worker_threads)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    stop_consumer(consumer)
    documents.stores.keywords.close()


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files or directories.")],
    chat: Annotated[str, typer.Option("--chat", help="Assistant (chat) id.")],
    url: ServerUrl = None,
    user: DevUser = None,
    token: BearerToken = None,
    batch: Annotated[int, typer.Option(min=1, help="Files per upload request.")] = 10,
) -> None:
    """Upload files to an assistant through a running server and follow their ingestion.

    Exit code 1: a file was rejected or failed; 2: the server refused the request; 3: no
    server answers.
    """
    from ragline.client import ClientError, server_url
    from ragline.ingest_client import ingest_paths

    try:
        base = server_url(url)
        code = ingest_paths(paths, chat_id=chat, url=base, user=user, token=token, batch=batch)
    except ClientError as exc:
        _fail(exc, exc.exit_code)
    raise typer.Exit(code)


@app.command()
def reindex() -> None:
    """Re-embed files made with another embedding model than the configured one."""
    from ragline.documents.reindex import reindex_stale

    settings = _settings()
    configure_logging(settings.log_level)
    count = reindex_stale(settings)
    typer.echo(f"queued {count} file(s) for re-embedding")


@models_app.command("prepare")
def models_prepare() -> None:
    """Build the local models from the packaged weights (offline), if needed: the
    embedding model, and the chat model's Q8_0 file."""
    from ragline.rag.embeddings.prepare import prepare_local_model
    from ragline.rag.llm.requantise import prepare_chat_model

    settings = _settings()
    configure_logging(settings.log_level)
    typer.echo(prepare_local_model(settings.models_dir))
    typer.echo(prepare_chat_model(settings.models_dir))


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[
        Path,
        typer.Option(
            exists=True,
            file_okay=False,
            help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
        ),
    ],
    split: Annotated[str, typer.Option(help="The qrels file to score.")] = "test",
) -> None:
    """nDCG@10 and recall@100 of dense, keyword and hybrid retrieval on a BEIR dataset.

    The corpus is ingested into a throwaway assistant (temporary data dir, embedded stores)
    with the configured embedder and chunk size; RETRIEVAL_CANDIDATES and HYBRID_ALPHA apply.
    """
    from ragline.evaluation.retrieval import evaluate_retrieval, load_beir, render

    settings = _settings()
    configure_logging(settings.log_level)
    report = evaluate_retrieval(load_beir(dataset, split=split), settings=settings)
    typer.echo(render(report))


@eval_app.command("answers")
def eval_answers(
    dataset: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="A question set: manifest.json and <split>.jsonl (default: the shipped "
            "docs-qa, ragline/evaluation/datasets/docs-qa).",
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="dev or test.")] = "test",
    url: ServerUrl = None,
    docs: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="The documents' root (default: the manifest's, ../shared/data/docs from the "
            "repository); absent: the command says so and skips.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N questions and N chains.")
    ] = None,
    user: DevUser = None,
    token: BearerToken = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the assistants made for the run.")
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", dir_okay=False, help="Write every figure and each answer here."),
    ] = None,
) -> None:
    """Answer quality, retrieval hit@5 and latency of a running server on a question set.

    The documents go into fresh assistants through the API; each question is asked in a
    fresh chat and each follow-up chain in one chat (the streamed chat endpoint). Reports
    token F1, contains-match, hit@5, the `supported` check, time to first token and total
    latency. Exit code 2: a bad dataset or the server refused; 3: no server answers.
    """
    from ragline.client import ClientError
    from ragline.evaluation.answers.command import eval_answers as evaluate

    try:
        evaluate(
            dataset_dir=dataset,
            split=split,
            url=url,
            docs=docs,
            limit=limit,
            user=user,
            token=token,
            keep=keep,
            json_path=json_path,
        )
    except ClientError as exc:
        _fail(exc, exc.exit_code)
    except ValueError as exc:  # the dataset's files
        _fail(exc, 2)
