from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ragline.api_keys import service
from ragline.api_keys.schemas import ApiKeyCreate
from ragline.models import ApiKey, ApiKeyScope, User
from tests.helpers import as_user

ALICE = as_user("alice")
BOB = as_user("bob")


async def create_key(
    client: httpx.AsyncClient, headers: dict[str, str] = ALICE, **fields: Any
) -> dict[str, Any]:
    response = await client.post("/api-keys", json={"name": "ci", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def list_keys(client: httpx.AsyncClient, headers: dict[str, str] = ALICE) -> list[Any]:
    response = await client.get("/api-keys", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def authenticate(db: AsyncEngine, raw_key: str) -> tuple[User, ApiKey] | None:
    async with AsyncSession(db, expire_on_commit=False) as session:
        found = await service.authenticate_key(session=session, raw_key=raw_key)
        await session.commit()
    return found


async def set_key_columns(db: AsyncEngine, key_id: str, **values: Any) -> None:
    async with db.begin() as connection:
        await connection.execute(
            update(ApiKey).where(ApiKey.id == uuid.UUID(key_id)).values(**values)
        )


async def test_key_is_shown_once_and_stored_only_as_a_hash(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    created = await create_key(client, name="  deploy script  ")
    key = created["key"]
    assert key.startswith("rl_") and len(key) == 46
    assert created["name"] == "deploy script"
    assert created["scope"] == "read-write"
    assert created["prefix"] == key[:11]
    assert created["expires_at"] is None and created["last_used_at"] is None

    listing = await client.get("/api-keys", headers=ALICE)
    assert key not in listing.text
    shown = {name: value for name, value in created.items() if name != "key"}
    assert listing.json() == [shown]

    async with db.connect() as connection:
        row = (await connection.execute(select(ApiKey.__table__))).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row)


async def test_each_user_sees_and_revokes_only_their_own_keys(
    client: httpx.AsyncClient,
) -> None:
    first = await create_key(client, name="first")
    await asyncio.sleep(0.002)
    second = await create_key(client, name="second", scope="read")
    bobs = await create_key(client, BOB, name="bob's")

    assert [k["id"] for k in await list_keys(client)] == [second["id"], first["id"]]
    assert [k["id"] for k in await list_keys(client, BOB)] == [bobs["id"]]
    assert second["scope"] == "read"

    stolen = await client.delete(f"/api-keys/{first['id']}", headers=BOB)
    assert stolen.status_code == 404
    assert stolen.json() == {"error": "ApiKeyNotFound", "detail": "No such API key."}
    unknown = await client.delete(f"/api-keys/{uuid.uuid4()}", headers=ALICE)
    assert unknown.status_code == 404
    assert len(await list_keys(client)) == 2


async def test_revoked_key_no_longer_authenticates(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    created = await create_key(client)
    kept = await create_key(client, name="kept")
    found = await authenticate(db, created["key"])
    assert found is not None
    assert found[0].subject == "alice" and str(found[1].id) == created["id"]

    assert (await client.delete(f"/api-keys/{created['id']}", headers=ALICE)).status_code == 204
    assert await authenticate(db, created["key"]) is None
    assert [k["id"] for k in await list_keys(client)] == [kept["id"]]
    again = await client.delete(f"/api-keys/{created['id']}", headers=ALICE)
    assert again.status_code == 404 and again.json()["error"] == "ApiKeyNotFound"
    assert await authenticate(db, kept["key"]) is not None


async def test_expired_and_wrong_keys_do_not_authenticate(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = await create_key(client, expires_at=expiry.isoformat(), scope="read")
    assert datetime.fromisoformat(created["expires_at"]) == expiry
    found = await authenticate(db, created["key"])
    assert found is not None and found[1].scope is ApiKeyScope.READ

    key = created["key"]
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    for wrong in (flipped, "rl_" + "x" * 43, "rl_", "", "eyJhbGciOiJSUzI1NiJ9.e30.sig", key * 3):
        assert await authenticate(db, wrong) is None, wrong

    await set_key_columns(db, created["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await authenticate(db, key) is None
    assert [k["id"] for k in await list_keys(client)] == [created["id"]]  # until revoked


async def test_last_used_at_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    created = await create_key(client)
    await authenticate(db, created["key"])
    [listed] = await list_keys(client)
    first_use = datetime.fromisoformat(listed["last_used_at"])
    assert datetime.now(UTC) - first_use < timedelta(minutes=1)

    await authenticate(db, created["key"])
    assert (await list_keys(client))[0]["last_used_at"] == listed["last_used_at"]

    long_ago = datetime.now(UTC) - timedelta(minutes=2)
    await set_key_columns(db, created["id"], last_used_at=long_ago)
    await authenticate(db, created["key"])
    assert datetime.fromisoformat((await list_keys(client))[0]["last_used_at"]) > long_ago


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({}, "name"),
        ({"name": "ci", "scope": "admin"}, "scope"),
        ({"name": "ci", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "ci", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),  # no offset
        ({"name": "ci", "expires_at": "soon"}, "expires_at"),
        ({"name": "ci", "key": "rl_chosen"}, "key"),
    ],
)
async def test_invalid_key_requests_are_422(
    client: httpx.AsyncClient, db: AsyncEngine, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api-keys", json=body, headers=ALICE)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["error"] == "ValidationError"
    assert [p["loc"] for p in problem["detail"]] == [["body", field]]
    async with db.connect() as connection:
        assert (await connection.execute(select(ApiKey.id))).all() == []


async def test_delete_with_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api-keys/not-a-uuid", headers=ALICE)
    assert response.status_code == 422 and response.json()["error"] == "ValidationError"


async def test_at_most_50_active_keys_per_user(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await create_key(client, name="first")
    async with AsyncSession(db) as session:
        alice = (await session.scalars(select(User).where(User.subject == "alice"))).one()
        for i in range(service.MAX_ACTIVE_KEYS - 1):
            data = ApiKeyCreate(name=f"seeded {i}")
            await service.create_key(session=session, user=alice, data=data)
        await session.commit()

    refused = await client.post("/api-keys", json={"name": "one too many"}, headers=ALICE)
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "TooManyApiKeys",
        "detail": "At most 50 active API keys per user; revoke one first.",
    }
    await create_key(client, BOB)  # the limit is per user

    [newest, *_] = await list_keys(client)
    assert (await client.delete(f"/api-keys/{newest['id']}", headers=ALICE)).status_code == 204
    replacement = await create_key(client, name="replacement")
    assert (await client.post("/api-keys", json={"name": "x"}, headers=ALICE)).status_code == 409

    # Expired keys do not count either.
    await set_key_columns(db, replacement["id"], expires_at=datetime.now(UTC) - timedelta(1))
    await create_key(client, name="after expiry")
