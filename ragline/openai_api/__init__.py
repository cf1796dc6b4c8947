"""OpenAI-compatible facade: ``/v1/models`` and ``/v1/chat/completions`` over the
assistants, so the ``openai`` client and tools built on it work unchanged."""
