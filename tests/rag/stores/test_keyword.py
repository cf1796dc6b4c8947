"""The keyword index against its real backends: SQLite FTS5 in a temp dir and a throwaway
PostgreSQL database."""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ragline.rag.stores.base import KeywordDoc, KeywordIndex
from ragline.rag.stores.keyword import SQLITE_FILE, SqliteKeywordIndex, build_keyword_index
from tests.conftest import PG_ADMIN_DSN

FILLER = "patients treated with the drug showed improved outcomes in the trial"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    name = f"ragline_test_keyword_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _open(location: str) -> KeywordIndex:
    """``DIR#sqlite`` (FTS5 alone), ``DIR#sqlite-arrays`` (every query after a write
    rebuilds the chat's in-memory arrays first and answers from them), or ``URL#TABLE``."""
    where, what = location.split("#")
    if not where.startswith("/"):
        return build_keyword_index(database_url=where, table=what)
    if what == "sqlite-arrays":
        return SqliteKeywordIndex(
            Path(where) / SQLITE_FILE, arrays_quiet_s=0, arrays_in_background=False
        )
    return SqliteKeywordIndex(Path(where) / SQLITE_FILE, arrays=False)


@pytest.fixture(params=["sqlite", "sqlite-arrays", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh index lives (see ``_open``)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return f"{url}#kw_{uuid.uuid4().hex[:8]}"
    return f"{tmp_path}#{request.param}"


@pytest.fixture
def index(location: str) -> Iterator[KeywordIndex]:
    opened = _open(location)
    yield opened
    opened.close()


def doc(
    id: str, text: str, *, owner: str = "alice", chat: str = "c1", file: str = "f1"
) -> KeywordDoc:
    return KeywordDoc(id=id, text=text, owner_id=owner, chat_id=chat, file_id=file)


def ids(index: KeywordIndex, query: str, **scope: object) -> list[str]:
    params = {"owner_id": "alice", "chat_id": "c1", **scope}
    return [hit.id for hit in index.search(query, **params)]  # type: ignore[arg-type]


def test_rarer_term_outranks_common_one(index: KeywordIndex) -> None:
    index.add([doc(f"common-{i}", f"{FILLER} insulin") for i in range(8)])
    index.add([doc("rare", f"{FILLER} zebrafish"), doc("other", "unrelated gardening notes")])

    hits = index.search("insulin zebrafish", owner_id="alice", chat_id="c1", k=3)

    assert hits[0].id == "rare"
    assert hits[0].score > hits[1].score
    assert "other" not in ids(index, "insulin zebrafish")


def test_stemming_and_stopwords(index: KeywordIndex) -> None:
    index.add([doc("a", "Running studies of the mitochondria"), doc("b", "a the of and")])

    assert ids(index, "the mitochondrion study ran runs") == ["a"]
    assert ids(index, "the of and") == []


def test_owner_chat_and_file_filters_apply_inside_the_query(index: KeywordIndex) -> None:
    index.add(
        [
            doc("mine", "quasar telescope", file="f1"),
            doc("mine-f2", "quasar spectrum", file="f2"),
            doc("bob", "pulsar only here", owner="bob"),
            doc("other-chat", "magnetar only here", chat="c2"),
        ]
    )

    assert ids(index, "pulsar") == []
    assert ids(index, "pulsar", owner_id="bob") == ["bob"]  # positive control
    assert ids(index, "magnetar") == []
    assert ids(index, "magnetar", chat_id="c2") == ["other-chat"]
    assert ids(index, "quasar", file_ids=["f2"]) == ["mine-f2"]
    assert sorted(ids(index, "quasar", file_ids=["f1", "f2"])) == ["mine", "mine-f2"]
    assert ids(index, "quasar", file_ids=[]) == []


def test_scores_of_given_chunks_equal_their_search_scores(index: KeywordIndex) -> None:
    index.add([doc(f"c{i}", f"{FILLER} insulin {'zebrafish ' * (i % 3)}") for i in range(12)])
    index.add([doc("f2", "insulin zebrafish", file="f2"), doc("none", "gardening notes")])
    index.add([doc("bob", "insulin zebrafish", owner="bob")])
    query = "zebrafish insulin"
    searched = {
        hit.id: hit.score
        for hit in index.search(query, owner_id="alice", chat_id="c1", file_ids=["f1"], k=100)
    }

    scored = index.scores(
        query,
        ["c1", "c4", "c9", "none", "bob", "f2"],
        owner_id="alice",
        chat_id="c1",
        file_ids=["f1"],
    )

    # Same statistics as search (the file filter included); chunks that match no term,
    # and chunks outside the scope (another owner, another file), get no score.
    assert scored == pytest.approx({i: searched[i] for i in ("c1", "c4", "c9")})
    assert index.scores(query, [], owner_id="alice", chat_id="c1") == {}


def test_term_rarity_is_the_chats_own(index: KeywordIndex) -> None:
    """BM25 statistics come from the searched chat's chunks: other chats' rows, however
    many, change neither its ranking nor its scores."""
    index.add([doc(f"c{i}", f"{FILLER} insulin {'zebrafish ' * (i % 3)}") for i in range(9)])
    index.add([doc("rare", f"{FILLER} glucagon")])
    before = {
        h.id: h.score
        for h in index.search("insulin glucagon", owner_id="alice", chat_id="c1", k=20)
    }

    # In chat c2 "glucagon" is everywhere and "insulin" nowhere.
    index.add([doc(f"x{i}", f"glucagon assay {i}", owner="bob", chat="c2") for i in range(40)])
    after = {
        h.id: h.score
        for h in index.search("insulin glucagon", owner_id="alice", chat_id="c1", k=20)
    }

    assert after == pytest.approx(before)
    assert max(after, key=after.__getitem__) == "rare"


def test_sqlite_moves_the_shared_table_of_earlier_versions(tmp_path: Path) -> None:
    """Earlier versions kept one FTS5 table for every chat; opening such a file moves
    its rows into per-chat tables, scope tokens and all, and drops the old table."""
    import hashlib
    import sqlite3

    from ragline.rag.stores.keyword.tokenize import terms

    def token(kind: str, value: str) -> str:
        return kind + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()

    rows = [("a1", "alice", "c1", "f1", "quasar telescope"), ("b1", "bob", "c2", "f2", "pulsar")]
    with sqlite3.connect(tmp_path / "keyword.sqlite3") as db:
        db.execute(
            "CREATE VIRTUAL TABLE keyword_fts USING fts5(body, scope, id UNINDEXED,"
            " tokenize = 'unicode61 remove_diacritics 0')"
        )
        db.execute(
            "CREATE TABLE chunk_text (id TEXT PRIMARY KEY, chat_id TEXT NOT NULL,"
            " file_id TEXT NOT NULL, text TEXT NOT NULL) WITHOUT ROWID"
        )
        for id_, owner, chat, file, body in rows:
            scope = " ".join(
                (token("i", id_), token("o", owner), token("c", chat), token("f", file))
            )
            db.execute(
                "INSERT INTO keyword_fts VALUES (?, ?, ?)", (" ".join(terms(body)), scope, id_)
            )
            db.execute("INSERT INTO chunk_text VALUES (?, ?, ?, ?)", (id_, chat, file, body))

    index = _open(f"{tmp_path}#sqlite")
    try:
        assert ids(index, "quasar telescope") == ["a1"]
        assert ids(index, "pulsar", owner_id="bob", chat_id="c2") == ["b1"]
        assert ids(index, "pulsar") == []
        assert index.count() == 2
        index.delete_file("f1")
        assert index.count() == 1
        moved = index.chunks(["b1"])["b1"]  # columns added, left empty
        assert (moved.text, moved.metadata, index.vectors(["b1"])) == ("pulsar", None, {})
    finally:
        index.close()
    with sqlite3.connect(tmp_path / "keyword.sqlite3") as db:
        legacy = db.execute("SELECT name FROM sqlite_master WHERE name = 'keyword_fts'")
        assert legacy.fetchall() == []


@pytest.mark.parametrize("how", ["ids", "file", "chat"])
def test_delete_leaves_nothing(index: KeywordIndex, how: str) -> None:
    index.add([doc(f"d{i}", f"nebula {i}", file="f9", chat="c9") for i in range(30)])
    index.add([doc("keep", "nebula kept", file="f1", chat="c1")])
    assert set(index.file_chunks(file_id="f9")) == {f"d{i}" for i in range(30)}

    if how == "ids":
        index.delete_ids([f"d{i}" for i in range(30)])
    elif how == "file":
        index.delete_file("f9")
    else:
        index.delete_chat("c9")

    assert index.file_chunks(file_id="f9") == {}
    assert index.count(file_id="f9") == 0
    assert index.count(chat_id="c9") == 0
    assert ids(index, "nebula", chat_id="c9") == []
    assert ids(index, "nebula") == ["keep"]
    assert index.count() == 1
    left = index.chunks([f"d{i}" for i in range(30)] + ["keep"])
    assert {i: c.text for i, c in left.items()} == {"keep": "nebula kept"}


def test_replace_same_id(index: KeywordIndex) -> None:
    index.add([doc("x", "first version about comets")])
    index.add([doc("x", "second version about asteroids", owner="bob", file="f2")])

    assert index.count() == 1
    assert ids(index, "comets") == []
    assert ids(index, "asteroids") == []
    assert ids(index, "asteroids comets", owner_id="bob") == ["x"]
    assert index.count(file_id="f2") == 1
    texts = {i: c.text for i, c in index.chunks(["x", "missing"]).items()}
    assert texts == {"x": "second version about asteroids"}


def _random_corpus(seed: int, count: int) -> list[KeywordDoc]:
    """Zipf-like word frequencies (some words in over half the chunks, whose IDF FTS5
    clamps), varied lengths, repeats, three files and a second owner."""
    rng = random.Random(seed)
    words = [f"w{i}x" for i in range(400)]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    docs = []
    for i in range(count):
        text = " ".join(rng.choices(words, weights, k=rng.randint(3, 120)))
        owner = "bob" if i % 17 == 0 else "alice"
        docs.append(doc(f"d{i}", f"common {text}", owner=owner, file=f"f{i % 3}"))
    return docs


def test_arrays_answer_exactly_as_fts5(tmp_path: Path) -> None:
    """The in-memory arrays rank and score as FTS5's bm25() does, filters included."""
    fts5 = _open(f"{tmp_path}#sqlite")
    arrays = _open(f"{tmp_path}#sqlite-arrays")
    fts5.add(_random_corpus(seed=3, count=400))
    fts5.delete_ids([f"d{i}" for i in range(0, 400, 7)])  # deletions shift the statistics
    rng = random.Random(5)
    try:
        for _ in range(40):
            query = " ".join(f"w{rng.randint(0, 60)}x" for _ in range(rng.randint(1, 6)))
            for scope in ({}, {"file_ids": ["f1", "f2"]}, {"owner_id": "bob"}):
                params = {"owner_id": "alice", "chat_id": "c1", "k": 1000, **scope}
                expected = {h.id: h.score for h in fts5.search(query, **params)}  # type: ignore[arg-type]
                got = {h.id: h.score for h in arrays.search(query, **params)}  # type: ignore[arg-type]
                assert got == pytest.approx(expected, rel=1e-9)
                assert expected or scope.get("owner_id") == "bob"
                assert arrays.arrays_version("c1") == arrays.version("c1") > 0  # type: ignore[attr-defined]
                top = [h.score for h in arrays.search(query, **{**params, "k": 5})]  # type: ignore[arg-type]
                assert top == pytest.approx(sorted(expected.values(), reverse=True)[:5])
                some = [f"d{i}" for i in range(0, 400, 3)] + ["missing"]
                params.pop("k")
                assert arrays.scores(query, some, **params) == pytest.approx(  # type: ignore[arg-type]
                    fts5.scores(query, some, **params),
                    rel=1e-9,  # type: ignore[arg-type]
                )
    finally:
        fts5.close()
        arrays.close()


def test_arrays_never_answer_for_an_older_version(tmp_path: Path) -> None:
    """Writes by another process (here: another index on the same file) bump the chat's
    version, so arrays built before them are not used."""
    reader = _open(f"{tmp_path}#sqlite-arrays")
    writer = _open(f"{tmp_path}#sqlite")
    try:
        writer.add([doc("a", "quasar telescope"), doc("b", "quasar spectrum")])
        assert sorted(ids(reader, "quasar")) == ["a", "b"]
        built = reader.arrays_version("c1")  # type: ignore[attr-defined]
        assert built == reader.version("c1") == 1  # type: ignore[attr-defined]

        writer.delete_ids(["a"])
        writer.add([doc("c", "quasar nebula")])

        assert sorted(ids(reader, "quasar")) == ["b", "c"]
        assert ids(reader, "telescope") == []
        assert reader.arrays_version("c1") == reader.version("c1") == 3  # type: ignore[attr-defined]
        writer.delete_chat("c1")
        assert ids(reader, "quasar") == []
    finally:
        reader.close()
        writer.close()


def test_arrays_are_built_in_the_background_once_the_chat_is_quiet(tmp_path: Path) -> None:
    index = SqliteKeywordIndex(tmp_path / SQLITE_FILE, arrays_quiet_s=0.2)
    try:
        index.add([doc("a", "quasar telescope"), doc("b", "pulsar")])
        assert ids(index, "quasar") == ["a"]  # just written: FTS5 answers, nothing is built
        assert index.arrays_version("c1") is None

        time.sleep(0.3)
        assert ids(index, "quasar") == ["a"]  # quiet: FTS5 answers, a build starts
        deadline = time.monotonic() + 30
        while index.arrays_version("c1") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert index.arrays_version("c1") == index.version("c1") == 1
        assert sorted(ids(index, "quasar pulsar")) == ["a", "b"]  # from the arrays
    finally:
        index.close()


def test_arrays_memory_is_bounded(tmp_path: Path) -> None:
    """Over the postings budget: a chat too large is never kept (FTS5 answers it, and it
    is not rebuilt on every search), and the least recently used chat is evicted."""
    index = SqliteKeywordIndex(
        tmp_path / SQLITE_FILE,
        arrays_quiet_s=0,
        arrays_in_background=False,
        arrays_max_postings=6,
    )
    try:
        index.add([doc("a", "quasar telescope"), doc("b", "pulsar nebula")])  # 4 postings
        index.add([doc("x", "quasar", chat="c2"), doc("y", "pulsar", chat="c2")])  # 2
        index.add([doc(f"z{i}", "magnetar dust ring", chat="c3") for i in range(3)])  # 9

        assert ids(index, "quasar") == ["a"]
        assert ids(index, "quasar", chat_id="c2") == ["x"]
        assert (index.arrays_version("c1"), index.arrays_version("c2")) == (1, 1)
        assert len(ids(index, "magnetar", chat_id="c3")) == 3  # too large: FTS5 answers
        assert index.arrays_version("c3") is None

        index.add([doc("w", "comet tail", chat="c4")])  # 2 more: c1 (least recent) goes
        assert ids(index, "comet", chat_id="c4") == ["w"]
        assert index.arrays_version("c1") is None
        assert ids(index, "quasar") == ["a"]  # FTS5 again, and no rebuild for a while
        assert index.arrays_version("c1") is None
        assert index.arrays_version("c4") == 1
    finally:
        index.close()


def _writer(location: str, worker: int) -> None:
    index = _open(location)
    for batch in range(10):
        index.add([doc(f"w{worker}-{batch}-{i}", f"galaxy cluster {i}") for i in range(20)])
    index.close()


def test_two_processes_add_concurrently(location: str) -> None:
    _open(location).close()  # the schema exists before the race
    context = multiprocessing.get_context("fork")  # the writers open their own index
    workers = [context.Process(target=_writer, args=(location, w)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]

    index = _open(location)
    assert index.count() == 400
    assert len(index.search("galaxy", owner_id="alice", chat_id="c1", k=1000)) == 400
    index.close()


def test_postgres_purges_deleted_postings_on_later_adds(postgres_url: str) -> None:
    url, table = postgres_url, f"kw_{uuid.uuid4().hex[:8]}"
    index = _open(f"{url}#{table}")
    index.add([doc(f"d{i}", "comet tail", file="f9") for i in range(5)])
    index.delete_file("f9")
    assert ids(index, "comet") == []

    index.add([doc("keep", "comet nucleus")])

    with psycopg.connect(url) as db:
        row = db.execute(f'SELECT count(*) FROM "{table}_postings"').fetchone()  # noqa: S608
    assert row == (2,)  # comet, nucleus: the dead chunks' postings are gone
    assert ids(index, "comet") == ["keep"]
    index.close()


def test_chunks_keep_metadata_and_a_copy_of_the_vector(index: KeywordIndex) -> None:
    meta = {"file_name": "a.pdf", "page": 3, "start_char": 0, "end_char": 40, "score": 0.5}
    vector = [0.25, -1.5, 3.0]
    index.add([KeywordDoc("a", "comet tails", "alice", "c1", "f1", meta, vector)])
    index.add([doc("b", "no copies kept")])

    chunks = index.chunks(["a", "b", "missing"])
    assert set(chunks) == {"a", "b"}
    assert chunks["a"].text == "comet tails"
    assert chunks["a"].metadata == meta
    vectors = index.vectors(["a", "b", "missing"])
    assert set(vectors) == {"a"}  # "b" was written without a copy
    assert vectors["a"].tolist() == vector  # float32, exact for these values
    assert chunks["b"].metadata is None

    assert index.file_chunks(file_id="f1") == {"a": meta, "b": None}

    index.update_metadata(["a"], [{**meta, "page": 4}])
    assert index.chunks(["a"])["a"].metadata == {**meta, "page": 4}
    assert index.file_chunks(file_id="f1")["a"] == {**meta, "page": 4}
    index.add([KeywordDoc("a", "comet tails again", "alice", "c1", "f1", {"page": 9}, [1.0])])
    replaced = index.chunks(["a"])["a"]
    assert (replaced.text, replaced.metadata) == ("comet tails again", {"page": 9})
    assert index.vectors(["a"])["a"].tolist() == [1.0]
    index.delete_ids(["a"])
    assert index.chunks(["a"]) == {}
    assert index.vectors(["a"]) == {}
