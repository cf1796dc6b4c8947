"""ragline: a self-hostable RAG backend."""

__version__ = "0.1.0"
