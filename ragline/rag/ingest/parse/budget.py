"""Parsing under a CPU-time and memory budget, in a small pool of warm processes.

Why processes: parsers are pure Python and lxml, holding the GIL. Run in an ingestion
thread, one dense file (a 2.4 MB DOCX of 600k tiny paragraphs, under every size limit)
held the thread for minutes, slowed every other thread of the process, and went on after
the file was deleted. In a process of its own the kernel enforces the budget
(``RLIMIT_CPU`` sends SIGXCPU, ``RLIMIT_AS`` makes allocations fail), the waiting thread
holds no GIL, and a delete kills the process. A cooperative deadline could do neither:
lxml builds a whole tree in one C call, and nothing can stop a thread from outside.

The processes start once (a fresh interpreter importing the parsers) and are reused: a
small file costs one round trip over a pipe. A process is replaced only when it was killed
(over budget, cancelled) or ran out of memory. There is at most one per thread parsing at
the same moment, so at most ``ingest_worker_threads``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

from llama_index.core.schema import Document

from ragline.rag.ingest.errors import IngestError, ParseError
from ragline.rag.ingest.guards import MB, IngestLimits
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.sniff import DetectedType

logger = logging.getLogger(__name__)
CHECK_S: Final = 1.0  # how often a parse still running asks whether to go on
# A parse starved of CPU (2 busy cores) is stopped after 4x its budget + 10 s of wall time.
WALL_FACTOR: Final = 4
WALL_SLACK_S: Final = 10.0
_SPAWN = multiprocessing.get_context("spawn")  # never fork a process with threads
# Plain text and Markdown this small are parsed in the calling thread: their parsers are
# linear (worst case measured: ~0.15 s for 32 KiB of one-line headings; an abstract ~0.2 ms),
# and a round trip to a parse process would double the cost of a small file.
INLINE_FAMILIES: Final = frozenset({"text", "markdown"})
INLINE_MAX_BYTES: Final = 32 * 1024


@dataclass(frozen=True, slots=True)
class ParseBudget:
    """What parsing one file may cost: CPU seconds, and memory above the idle parser."""

    cpu_seconds: int
    memory_mb: int


class ParseBudgetExceeded(ParseError):
    """Parsing needed more CPU time or memory than the budget: permanent, never retried."""


class ParseInterrupted(RuntimeError):
    """The parse process was killed by someone else (shutdown, the OOM killer): transient,
    retried like any other failure that is not the file's fault."""


class ParseCancelled(Exception):
    """The parse was stopped because its file no longer wants it (deleted, replaced)."""


class ParsePool:
    """Thread-safe: each ingestion thread checks a warm process out for one parse."""

    def __init__(self, budget: ParseBudget) -> None:
        self.budget = budget
        self._idle: list[_ParseProcess] = []
        self._lock = threading.Lock()
        self._closed = False

    def parse(
        self,
        path: Path,
        detected: DetectedType,
        *,
        limits: IngestLimits,
        go_on: Callable[[], bool] = lambda: True,
    ) -> list[Document]:
        """``parse.parse`` in a parse process. ``go_on`` is asked every ``CHECK_S`` while
        the parse runs; False kills the parse and raises ``ParseCancelled``. Raises
        ``ParseBudgetExceeded`` if it needs more than the budget."""
        if detected.family in INLINE_FAMILIES and path.stat().st_size <= INLINE_MAX_BYTES:
            return parse(path, detected, limits=limits)
        worker = self._check_out()
        try:
            kind, value, reuse = worker.run(
                (str(path), detected, limits, self.budget.cpu_seconds), go_on
            )
        except BaseException:
            worker.kill()
            raise
        if reuse:
            self._check_in(worker)
        else:  # it exits after this answer
            worker.kill()
        if kind == "ok":
            return [Document(text=text, metadata=metadata) for text, metadata in value]
        if kind == "memory":
            raise ParseBudgetExceeded(
                f"parsing needed more than {self.budget.memory_mb} MB of memory "
                "(PARSE_MEMORY_MB); the document is too large or too dense to read"
            )
        assert isinstance(value, IngestError)
        raise value

    def warm_up(self, count: int) -> None:
        """Start ``count`` parse processes (one per ingestion thread) ahead of the first
        files, side by side, and wait until they are ready."""
        with self._lock:
            missing = count - len(self._idle)
        started = [_ParseProcess(self.budget) for _ in range(missing)]
        for worker in started:
            worker.wait_ready(lambda: True)
            self._check_in(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def _check_out(self) -> _ParseProcess:
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            if self._idle:
                return self._idle.pop()
        return _ParseProcess(self.budget)

    def _check_in(self, worker: _ParseProcess) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
                return
        worker.kill()


class _ParseProcess:
    def __init__(self, budget: ParseBudget) -> None:
        self.budget = budget
        self._connection, child = _SPAWN.Pipe()
        self._process: BaseProcess = _SPAWN.Process(
            target=serve, args=(child, budget.memory_mb), name="ragline-parse", daemon=True
        )
        self._process.start()
        child.close()
        self._ready = False  # the process sends "ready" once it has imported the parsers

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def run(self, request: tuple[Any, ...], go_on: Callable[[], bool]) -> tuple[str, Any, bool]:
        self.wait_ready(go_on)
        self._connection.send(request)
        return self._receive(go_on, WALL_FACTOR * self.budget.cpu_seconds + WALL_SLACK_S)

    def wait_ready(self, go_on: Callable[[], bool]) -> None:
        """Until the process has imported the parsers (not part of any file's budget)."""
        if not self._ready:
            try:
                self._receive(go_on, None)
            except IngestError as exc:  # not the file's fault: transient
                raise RuntimeError(f"the parse process did not start: {exc}") from None
            self._ready = True

    def _receive(self, go_on: Callable[[], bool], limit_s: float | None) -> tuple[str, Any, bool]:
        deadline = time.monotonic() + (limit_s or 0.0)
        while not self._connection.poll(CHECK_S):
            if not go_on():
                raise ParseCancelled()
            if limit_s is not None and time.monotonic() > deadline:
                raise self._over_budget()
        try:
            reply: tuple[str, Any, bool] = self._connection.recv()
        except EOFError:
            self._process.join()
            if self._process.exitcode == -signal.SIGXCPU:
                raise self._over_budget() from None
            if self._process.exitcode in (-signal.SIGKILL, -signal.SIGTERM):
                raise ParseInterrupted("the parse process was killed from outside") from None
            raise ParseError(
                f"the parser stopped (exit code {self._process.exitcode}) on this file; it "
                f"may need more than the {self.budget.memory_mb} MB of memory allowed "
                "(PARSE_MEMORY_MB)"
            ) from None
        return reply

    def _over_budget(self) -> ParseBudgetExceeded:
        return ParseBudgetExceeded(
            f"parsing took more than {self.budget.cpu_seconds} s of CPU (PARSE_CPU_SECONDS); "
            "the document is too dense to read (e.g. hundreds of thousands of tiny "
            "paragraphs or cells)"
        )

    def kill(self) -> None:
        self._process.kill()
        self._process.join()
        self._connection.close()


def serve(connection: Connection, memory_mb: int) -> None:
    """A parse process: answers ``(path, detected, limits, cpu_seconds)`` requests with
    ``(kind, value, reuse)``: ``("ok", [(text, metadata)])``, ``("refused", IngestError)``
    or ``("memory", None)``, and whether it takes another request, until the pipe closes.
    lxml reports a failed allocation as a syntax error, so a failure after the process's
    peak passed half the allowance counts as a memory failure; such a process exits after
    its answer (a fresh one starts with a fresh peak)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump core
    base = _vm("VmSize")
    _lower(resource.RLIMIT_AS, base + memory_mb * MB)
    connection.send(("ready", None, True))
    while True:
        try:
            path, detected, limits, cpu_seconds = connection.recv()
        except EOFError:
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _lower(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds))
        reply: tuple[str, Any]
        try:
            documents = parse(Path(path), detected, limits=limits)
            reply = ("ok", [(document.text, document.metadata) for document in documents])
        except MemoryError:
            reply = ("memory", None)
        except IngestError as exc:
            reply = ("refused", type(exc)(exc.reason))  # without its unpicklable cause
        near_limit = _vm("VmPeak") > base + memory_mb * MB // 2
        if near_limit and reply[0] == "refused" and isinstance(reply[1], ParseError):
            reply = ("memory", None)
        reuse = not near_limit and reply[0] != "memory"
        connection.send((*reply, reuse))
        if not reuse:
            return


def _lower(limit: int, soft: int) -> None:
    """Set a soft limit (the hard one stays, so the next request may raise it again)."""
    _, hard = resource.getrlimit(limit)
    resource.setrlimit(limit, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _vm(field: str) -> int:
    """This process's virtual memory now (``VmSize``) or at its peak (``VmPeak``), bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0
