"""Which chunks a request may see, and ``POST /chats/{id}/search``.

The scope comes from the database, never from the stores: only files of this owner's chat
whose row exists and is ``indexed`` count, so a deleted file (its chunks still being
purged), an unfinished upload or another user's file id named in ``params.files`` is never
searched. Owner and chat are also filters inside each store's query.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.chat.runtime import ChatRuntime
from ragline.chat.schemas import ChatParams, SearchHit, SearchRequest, SearchResponse, Source
from ragline.errors import ChatNotFound, ServiceUnavailable
from ragline.models import Chat, ChatFile, FilePurge, FileStatus, User
from ragline.rag.query.fusion import reciprocal_rank_fusion
from ragline.rag.query.retrieve import Mode, RetrievedChunk, Scope, StoreUnavailable

SNIPPET_CHARS = 300


class StoresUnavailable(ServiceUnavailable):
    pass


async def search_scope(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID, params: ChatParams
) -> Scope:
    """What the owner's chat may search; ``ChatNotFound`` when the chat is not theirs (the
    ownership check is part of the same statement)."""
    owned = (Chat.id == chat_id) & (Chat.owner_id == owner.id)
    mine = (ChatFile.owner_id == owner.id) & (ChatFile.chat_id == chat_id)
    indexed = mine & (ChatFile.status == FileStatus.INDEXED)
    owner_id, chat = str(owner.id), str(chat_id)
    selected = params.selected_files()
    if selected is not None:
        if await session.scalar(select(Chat.id).where(owned)) is None:
            raise ChatNotFound()
        rows = await session.scalars(select(ChatFile.id).where(indexed, ChatFile.id.in_(selected)))
        return Scope(owner_id, chat, sorted(str(file_id) for file_id in rows))
    # One statement: ownership, whether any file is unfinished (index seeks on chat and
    # status, not a count of every file: assistants may hold thousands), and whether any
    # file is being purged.
    unfinished = [status for status in FileStatus if status is not FileStatus.INDEXED]
    flags = (
        await session.execute(
            select(
                exists().where(mine, ChatFile.status.in_(unfinished)),
                exists().where(FilePurge.chat_id == chat_id),
            )
            .select_from(Chat)
            .where(owned)
        )
    ).one_or_none()
    if flags is None:
        raise ChatNotFound()
    any_unfinished, purging = flags
    if not any_unfinished and not purging:
        return Scope(owner_id, chat, None)  # every chunk of the chat is searchable
    rows = await session.scalars(select(ChatFile.id).where(indexed))
    return Scope(owner_id, chat, sorted(str(file_id) for file_id in rows))


def embed_early(runtime: ChatRuntime, query: str) -> asyncio.Task[list[float]]:
    """Start embedding the query now, in a thread, so it overlaps the database queries
    that decide the scope (the embedding is most of a search's time)."""
    return asyncio.create_task(runtime.in_thread(runtime.retriever.embed_query, query))


async def retrieve(
    runtime: ChatRuntime,
    query: str,
    scope: Scope,
    *,
    k: int,
    mode: Mode = Mode.HYBRID,
    embedding: asyncio.Task[list[float]] | None = None,
) -> list[RetrievedChunk]:
    try:
        vector = await embedding if embedding is not None else None
        return await runtime.in_thread(
            runtime.retriever.retrieve, query, scope, k=k, mode=mode, embedding=vector
        )
    except StoreUnavailable as exc:
        raise StoresUnavailable(str(exc)) from exc


async def retrieve_follow_up(
    runtime: ChatRuntime,
    question: str,
    rewrite: Awaitable[str],
    scope: Scope,
    *,
    k: int,
    embedding: asyncio.Task[list[float]] | None = None,
) -> list[RetrievedChunk]:
    """A follow-up that needs the conversation: searched as asked at once, while the model
    writes its standalone form (``rewrite``), then as rewritten; the two rankings fused by
    reciprocal rank, so a rewrite that drifts to the previous topic cannot take the
    question's own results away. Ties go to the rewrite (the question as asked, *it* and
    all, is the safety net). A rewrite that is the question itself is searched once."""
    as_asked = asyncio.create_task(retrieve(runtime, question, scope, k=k, embedding=embedding))
    try:
        query = await rewrite
        if " ".join(query.casefold().split()) == " ".join(question.casefold().split()):
            return await as_asked
        rewritten = await retrieve(runtime, query, scope, k=k)
        return reciprocal_rank_fusion([rewritten, await as_asked], k=k)
    finally:
        as_asked.cancel()  # only if it is still running: something above failed


def to_source(chunk: RetrievedChunk) -> Source:
    snippet = " ".join(chunk.text.split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 1].rstrip() + "…"
    return Source(
        chunk_id=chunk.id,
        file_id=chunk.file_id,
        file_name=chunk.file_name,
        page=chunk.page,
        section=chunk.section,
        start_char=chunk.start_char,
        end_char=chunk.end_char,
        snippet=snippet,
        score=round(chunk.score, 6),
    )


async def search(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    request: SearchRequest,
    runtime: ChatRuntime,
) -> SearchResponse:
    mode = Mode(request.mode)
    embedding = embed_early(runtime, request.query) if mode is not Mode.KEYWORD else None
    try:
        scope = await search_scope(
            session=session, owner=owner, chat_id=chat_id, params=request.params
        )
    except BaseException:
        if embedding is not None:
            embedding.cancel()
        raise
    k = request.k or runtime.settings.retrieval_top_k
    chunks = await retrieve(runtime, request.query, scope, k=k, mode=mode, embedding=embedding)
    return SearchResponse(
        query=request.query,
        results=[
            SearchHit(
                **to_source(c).model_dump(),
                text=c.text,
                dense_score=c.dense_score,
                keyword_score=c.keyword_score,
            )
            for c in chunks
        ],
    )
