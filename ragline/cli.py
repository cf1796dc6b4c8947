"""``ragline serve | db upgrade | db downgrade | db current`` (more commands later)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from ragline.config import Settings, UnsafeConfigurationError, get_settings
from ragline.db import migrate
from ragline.observability.logging import configure_logging

app = typer.Typer(help="ragline: self-hostable RAG backend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    try:
        return get_settings()
    except (UnsafeConfigurationError, ValidationError) as exc:
        typer.echo(f"ragline: {exc}", err=True)
        raise typer.Exit(2) from exc


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
        typer.echo(f"ragline: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level)
    config = Config()
    config.application_path = "ragline.main:create_app()"
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    # One process runs in-process (workers=0 in Hypercorn's terms); more are spawned.
    config.workers = 0 if workers == 1 else workers
    config.accesslog = "-"
    config.errorlog = "-"
    config.loglevel = settings.log_level
    sys.exit(run(config))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    migrate.upgrade(_settings().sqlalchemy_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target, e.g. -1 or base.")) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(_settings().sqlalchemy_url, revision)


@db_app.command("current")
def db_current() -> None:
    """Show the database's current revision."""
    migrate.current(_settings().sqlalchemy_url)
