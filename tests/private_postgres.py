"""A private PostgreSQL cluster that a test may stop and start again: ``initdb`` into a
throwaway directory, served on a free loopback port. The shared server (5432) is never
touched. As root, the cluster belongs to the ``postgres`` user (PostgreSQL refuses to run
as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.services import free_port


def _bin_dir() -> Path:
    if explicit := os.environ.get("RAGLINE_TEST_PG_BIN"):
        return Path(explicit)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries (set RAGLINE_TEST_PG_BIN)")
    return versions[-1]


class PostgresCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.running = False
        self._bin = _bin_dir()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            "--no-sync",
        )

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                "-c shared_buffers=16MB -c max_connections=50",
            ]
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.running = True

    def stop(self) -> None:
        """Fast shutdown: open sessions are ended, as when a server goes down under load."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster (superuser ``postgres``, trust on loopback); removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="ragline-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster = PostgresCluster(root, free_port())
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
