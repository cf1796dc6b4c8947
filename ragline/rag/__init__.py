"""The RAG pipeline. Imports neither FastAPI nor the ORM (see docs/architecture.md)."""
