"""Which chunks each embedding batch takes (``backlog.py``); the end-to-end case, a small
upload indexed while a big one embeds, is in tests/documents/test_small_first.py."""

from __future__ import annotations

import threading

from llama_index.core.schema import TextNode

from ragline.rag.ingest.backlog import Backlog, Waiting, plan_batch
from ragline.rag.ingest.sink import FileWork


def test_a_small_file_goes_in_the_next_batch_without_filler() -> None:
    # The case: a 551-chunk CSV, then a 4-chunk PDF: the PDF and the CSV's share.
    assert plan_batch([Waiting(551, 551), Waiting(4, 4)], 256) == [64, 4]
    # The same upload (jobs submit its smallest file first): the PDF alone.
    assert plan_batch([Waiting(4, 4), Waiting(551, 551)], 256) == [4, 0]
    # Files completing in a batch that fill more than a quarter of it get filler.
    assert plan_batch([Waiting(551, 551), Waiting(70, 70)], 256) == [186, 70]


def test_a_big_file_alone_fills_every_batch() -> None:
    assert plan_batch([Waiting(500, 500)], 256) == [256]
    assert plan_batch([Waiting(244, 244)], 256) == [244]
    assert plan_batch([Waiting(30, 30), Waiting(500, 500)], 256) == [30, 0]  # a tail alone


def test_fewest_remaining_first_then_the_older() -> None:
    files = [Waiting(300, 300), Waiting(200, 200), Waiting(200, 200), Waiting(20, 20)]
    # the oldest's guaranteed quarter (128), the 20, the older 200, the rest of the batch
    assert plan_batch(files, 512) == [128, 200, 164, 20]


def test_the_oldest_file_is_not_starved_by_many_small_ones() -> None:
    files = [Waiting(500, 500)] + [Waiting(1, 1)] * 300
    takes = plan_batch(files, 256)
    assert takes[0] == 64 and sum(takes) == 256
    assert takes[1:] == [1] * 192 + [0] * 108  # the older small files first


def test_only_submitted_chunks_are_taken() -> None:
    # A huge file still being submitted (backpressure) counts by what it has left overall.
    assert plan_batch([Waiting(16_000, 64), Waiting(10, 10), Waiting(0, 0)], 256) == [64, 10, 0]
    assert plan_batch([], 256) == []
    assert plan_batch([Waiting(0, 0), Waiting(3, 0)], 256) == [0, 0]


def _ignore(_: object) -> None:
    pass


def _work(key: str, chunks: int) -> FileWork:
    nodes = [TextNode(id_=f"{key}-{i}", text=f"{key} chunk {i}") for i in range(chunks)]
    return FileWork(key=key, chat_id="c", new=nodes, on_progress=_ignore, on_error=_ignore)


def test_backlog_hands_out_by_plan_drops_finished_works_and_blocks_when_full() -> None:
    backlog = Backlog(max_pending_chunks=200)
    gone = _work("gone", 5)
    for work in (_work("big", 150), _work("small", 3), _work("empty", 0), gone):
        backlog.submit(work)
    gone.finished = True  # failed or deleted before its chunks were embedded

    batch, dropped, last = backlog.take(64, max_wait_s=0)
    assert [(piece.work.key, len(piece.nodes)) for piece in batch] == [
        ("empty", 0),
        ("big", 16),  # the oldest's share; no filler beside the file that completes
        ("small", 3),
    ]
    assert [(piece.work.key, piece.units) for piece in dropped] == [("gone", 5)]
    assert not last
    backlog.release(dropped)

    # 159 chunks + 1 empty work pending: a 50-chunk file must wait for room.
    late = _work("late", 50)
    submitted = threading.Event()
    thread = threading.Thread(target=lambda: (backlog.submit(late), submitted.set()))
    thread.start()
    assert not submitted.wait(0.2)
    backlog.release(batch)  # written: room again
    assert submitted.wait(5)
    thread.join()

    batch, _, _ = backlog.take(64, max_wait_s=0)
    assert [(piece.work.key, [n.id_ for n in piece.nodes][:1]) for piece in batch] == [
        ("big", ["big-16"]),  # in order within a file
        ("late", ["late-0"]),
    ]
    backlog.close()
    taken = sum(len(piece.nodes) for piece in batch)
    while not last:
        batch, _, last = backlog.take(64, max_wait_s=0)
        taken += sum(len(piece.nodes) for piece in batch)
    assert taken == 150 - 16 + 50  # everything left is handed out before the close ends
