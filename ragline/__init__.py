"""ragline: a self-hostable RAG backend."""

import os
import sys

__version__ = "0.1.0"

# Every library's usage telemetry is off: set here, before any of them is imported,
# because each acts at import or first use.
# - OpenVINO sends a usage event (a DNS lookup and an HTTPS post from a forked process)
#   every time `openvino` is imported, through `openvino-telemetry`, unless a consent file
#   in the user's home says no. With that module unimportable, OpenVINO falls back to its
#   own no-op stub (openvino/tools/ovc/telemetry_utils.py). NNCF, which uses the same
#   module, runs only in the tools environment (ragline/rag/embeddings/tools_env.py).
# - Chroma (its client is also built with anonymized_telemetry=False), Hugging Face's hub
#   client (never allowed to fetch either: models come from installed packages), and the
#   common opt-outs some libraries honour. An operator may still set these.
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
for _name, _value in {
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
}.items():
    os.environ.setdefault(_name, _value)
