"""The C allocator's memory, on glibc (elsewhere these do nothing).

glibc gives threads that contend for ``malloc`` arenas of their own, up to eight per core;
a server's many threads (searches, ingestion, the models' runtimes) each keep free pages
in theirs. Two arenas cut `ragline serve`'s RSS by 10% (1,504 -> 1,354 MiB after the
docs-qa set in 20 assistants and 30 questions; benchmarks/memory.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from functools import cache
from typing import Any

M_ARENA_MAX = -8
"""``mallopt``'s parameter (malloc.h)."""
SERVER_ARENAS = 2


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def limit_arenas(count: int = SERVER_ARENAS) -> None:
    """At most ``count`` malloc arenas from now on (call before starting threads), unless
    the environment sets ``MALLOC_ARENA_MAX`` itself (glibc's own variable wins)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    if (libc := _libc()) is not None:
        libc.mallopt(M_ARENA_MAX, count)


def release_memory() -> None:
    """Collect garbage and hand the allocator's free pages back to the system, so that
    what was just freed (an unloaded model) leaves the RSS."""
    gc.collect()
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)
