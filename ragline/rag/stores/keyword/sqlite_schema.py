"""The SQLite keyword index's schema: the shared tables, one FTS5 table per chat, and the
upgrades of files written by earlier versions (applied when the index opens)."""

from __future__ import annotations

import hashlib
import sqlite3

SCHEMA = (
    # The chunks' original text (FTS5 holds it tokenized), for citations and prompts, the
    # chat whose table holds each chunk's FTS5 row, and the chunk's citation metadata
    # (JSON) and vector (float32) as the vector store has them (see ``KeywordDoc``).
    """CREATE TABLE IF NOT EXISTS chunk_text (
        id TEXT PRIMARY KEY, chat_id TEXT NOT NULL, file_id TEXT NOT NULL, text TEXT NOT NULL,
        meta TEXT, vector BLOB
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS chunk_text_file ON chunk_text (file_id)",
    "CREATE INDEX IF NOT EXISTS chunk_text_chat ON chunk_text (chat_id)",
    # Bumped in the transaction of every write to a chat's table (never reset while the
    # chat exists; deleting the chat deletes its row), so any process can tell whether its
    # in-memory arrays of that chat are still current.
    """CREATE TABLE IF NOT EXISTS chat_version (
        chat_id TEXT PRIMARY KEY, version INTEGER NOT NULL, changed_at REAL NOT NULL
    ) WITHOUT ROWID""",
)


CHAT_TABLE = """CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(
    body, scope, id UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
)"""


TABLE_PREFIX = "kw_"


LEGACY_TABLE = "keyword_fts"
"""Before one table per chat: one FTS5 table for all, moved into per-chat tables at open."""


def table_name(chat_id: str) -> str:
    """The chat's FTS5 table name (a hash: chat ids are not SQL identifiers)."""
    return TABLE_PREFIX + hashlib.blake2b(chat_id.encode(), digest_size=16).hexdigest()


def add_chunk_columns(db: sqlite3.Connection) -> None:
    """Files written before ``chunk_text`` kept metadata and vectors gain the columns;
    their old rows keep NULL there (readers fall back to the vector store)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(chunk_text)")}
    for name, kind in (("meta", "TEXT"), ("vector", "BLOB")):
        if name not in columns:
            db.execute(f"ALTER TABLE chunk_text ADD COLUMN {name} {kind}")


def fts_tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'"
        " AND name LIKE ? ESCAPE '\\'",
        (TABLE_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    return [str(name) for (name,) in rows]


def move_legacy_table(db: sqlite3.Connection) -> None:
    """Move the rows of the one shared FTS5 table of earlier versions into per-chat
    tables (their scope column kept its id, owner and file tokens) and drop it."""
    legacy = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)
    ).fetchone()
    if legacy is None:
        return
    chats = db.execute("SELECT DISTINCT chat_id FROM chunk_text").fetchall()
    for (chat_id,) in chats:
        table = table_name(chat_id)
        db.execute(CHAT_TABLE.format(table=table))
        db.execute(
            f"INSERT INTO {table} (body, scope, id)"  # noqa: S608
            f" SELECT body, scope, id FROM {LEGACY_TABLE}"
            " WHERE id IN (SELECT id FROM chunk_text WHERE chat_id = ?)",
            (chat_id,),
        )
    db.execute(f"DROP TABLE {LEGACY_TABLE}")
