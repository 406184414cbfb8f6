"""Erasure (DESIGN §6.4) on both databases: after ``DELETE /users/me`` the user cannot log
in, their sessions and sockets are closed, their texts are gone from the database, the
search index and the media store, the username stays reserved, and the others'
conversations still render; the "anonymise" mode keeps messages under "Deleted user";
admins erase others; wrong passwords, bad bodies and concurrent erasures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from parley.container import Container
from parley.store.tables.accounts import users
from parley.store.tables.contacts import contacts
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages, reactions
from tests.conftest import NO_SEND_LIMITS, TEST_PASSWORD, UserHandle, make_user
from tests.support.attachment_helpers import blob_keys, png_bytes, stored, upload_ok
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.container_events import EventLog
from tests.support.gateway_helpers import running_server
from tests.support.socket_revocation import AUTHENTICATION_FAILED, PROMPTLY, identified

pytestmark = pytest.mark.usefixtures("backend")


async def erase(client: httpx.AsyncClient, user: UserHandle, password: str = TEST_PASSWORD) -> httpx.Response:
    return await client.request(
        "DELETE", "/api/v1/users/me", json={"password": password}, headers=user.headers
    )


async def index_entries(container: Container, word: str) -> int:
    """What the full-text index itself holds for ``word`` (not what search shows)."""
    async with container.db.read() as conn:
        if container.db.is_sqlite:
            words = await conn.exec_driver_sql(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (word,)
            )
            trigrams = await conn.exec_driver_sql(
                "SELECT count(*) FROM messages_fts_trigram WHERE messages_fts_trigram MATCH ?", (word,)
            )
            return int(words.scalar_one()) + int(trigrams.scalar_one())
        vectors = await conn.exec_driver_sql(
            "SELECT count(*) FROM messages WHERE search_vector @@ plainto_tsquery('parley_search', $1)",
            (word,),
        )
        return int(vectors.scalar_one())


async def erased(log: EventLog, user: UserHandle) -> None:
    """Wait for the erasure's content job (messages, reactions) to finish."""
    await log.wait_for(lambda e: e.type == "user.erased" and e.data["user_id"] == user.id)


async def texts_in_database(container: Container, needle: str) -> int:
    async with container.db.read() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).select_from(messages).where(messages.c.content.contains(needle))
                )
            ).scalar_one()
        )


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_erasure_removes_the_users_traces(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    direct = await open_direct(client, alice, bob)
    group = await open_group(client, alice, [bob], name="Alice's group")
    picture = await upload_ok(client, alice, png_bytes(), "holiday.png")
    keys = await blob_keys(container, picture)
    await send(client, alice, direct["id"], "quokka secret one")
    await send(client, alice, group["id"], "quokka secret two", attachment_ids=[picture["id"]])
    bobs = await send(client, bob, group["id"], "bob keeps his quokka words")
    await client.put(f"/api/v1/messages/{bobs['id']}/reactions/🎉", headers=alice.headers)
    await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)

    # Wrong password, missing password, bad text: refused, nothing erased.
    wrong = await erase(client, alice, "not the password at all")
    assert wrong.status_code == 403 and code(wrong) == "INVALID_PASSWORD"
    for body in ({}, {"password": ""}, {"password": 5}, {"password": "x", "extra": True}):
        response = await client.request("DELETE", "/api/v1/users/me", json=body, headers=alice.headers)
        assert response.status_code == 400, response.text
    response = await client.request(
        "DELETE",
        "/api/v1/users/me",
        content=json.dumps({"password": "a\x00b\ud800"}),
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert await texts_in_database(container, "quokka secret") == 2
    await container.search_indexer.catch_up()  # indexed now, not within the indexer's bound
    assert await index_entries(container, "secret") == (4 if container.db.is_sqlite else 2)

    log = EventLog(container)
    assert (await erase(client, alice)).status_code == 204
    await erased(log, alice)  # the job that erases the messages is done
    await container.attachments.sweep()

    # Cannot log in, and the old tokens are dead.
    login = await client.post("/api/v1/auth/login", json={"username": "alice", "password": TEST_PASSWORD})
    assert login.status_code == 401
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refresh.status_code == 401
    # Texts gone from the database and the search index; files gone from the media store.
    assert await texts_in_database(container, "quokka secret") == 0
    assert await index_entries(container, "secret") == 0
    assert await index_entries(container, "quokka") == (2 if container.db.is_sqlite else 1)  # bob's
    hits = (await client.get("/api/v1/search", params={"q": "quokka"}, headers=bob.headers)).json()
    assert [h["message"]["id"] for h in hits["results"]] == [bobs["id"]]
    assert not any(await stored(container, keys))
    async with container.db.read() as conn:
        assert (await conn.execute(select(attachments).where(attachments.c.uploader_id == alice.id))).first() is None
        assert (await conn.execute(select(reactions).where(reactions.c.user_id == alice.id))).first() is None
        assert (await conn.execute(select(contacts).where(contacts.c.requester_id == alice.id))).first() is None
        row = (await conn.execute(select(users).where(users.c.id == alice.id))).one()
    assert row.display_name == "Deleted user" and row.erased_at is not None
    # The username stays reserved.
    again = await client.post("/api/v1/auth/register", json={"username": "alice", "password": TEST_PASSWORD})
    assert again.status_code == 409
    found = (await client.get("/api/v1/users", params={"q": "alice"}, headers=bob.headers)).json()
    assert found["users"] == []
    # Bob's conversations still render: history with tombstones, the list, the changes feed.
    for conversation in (direct, group):
        history = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=bob.headers)
        assert history.status_code == 200
        alices = [m for m in history.json()["messages"] if m["sender_id"] == alice.id]
        assert alices and all(m["deleted"] and m["content"] == "" for m in alices)
    listed = await client.get("/api/v1/conversations", headers=bob.headers)
    assert {c["id"] for c in listed.json()["conversations"]} >= {direct["id"], group["id"]}
    members = (await client.get(f"/api/v1/conversations/{group['id']}/members", headers=bob.headers)).json()
    assert [m["user_id"] for m in members["members"]] == [bob.id]  # she left; bob owns it now
    reacted = (await client.get(f"/api/v1/conversations/{group['id']}/messages", headers=bob.headers)).json()
    assert all(not m["reactions"] for m in reacted["messages"] if m["id"] == bobs["id"])


@pytest.mark.settings(erasure_mode="anonymise", **NO_SEND_LIMITS)
async def test_anonymise_mode_keeps_messages_as_deleted_user(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    direct = await open_direct(client, alice, bob)
    kept = await send(client, alice, direct["id"], "this stays")
    log = EventLog(container)
    assert (await erase(client, alice)).status_code == 204
    await erased(log, alice)
    history = (await client.get(f"/api/v1/conversations/{direct['id']}/messages", headers=bob.headers)).json()
    message = next(m for m in history["messages"] if m["id"] == kept["id"])
    assert message["content"] == "this stays" and not message["deleted"]
    view = (await client.get(f"/api/v1/conversations/{direct['id']}", headers=bob.headers)).json()
    names = {m["user_id"]: m.get("display_name") for m in view["conversation"]["members"]}
    assert names.get(alice.id) == "Deleted user"


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_admin_erasure_and_concurrency(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parley.lifecycle import erasure

    monkeypatch.setattr(erasure, "BATCH", 7)  # several batches of 30 messages and reactions
    admin = await make_user(client, "root")
    await container.accounts.set_admin(admin.id, True)
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob, admin])
    for i in range(30):
        sent = await send(client, alice, group["id"], f"burst {i}")
        by_bob = await send(client, bob, group["id"], f"bob {i}")
        await client.put(f"/api/v1/messages/{by_bob['id']}/reactions/👍", headers=alice.headers)
        await client.put(f"/api/v1/messages/{sent['id']}/reactions/👍", headers=bob.headers)
    # Not an admin: 403; unknown or malformed ids: 404.
    response = await client.delete(f"/api/v1/admin/users/{alice.id}", headers=bob.headers)
    assert response.status_code == 403
    for target in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope"):
        assert (await client.delete(f"/api/v1/admin/users/{target}", headers=admin.headers)).status_code == 404
    # The user and the admin at once, twice each: no 500, one consistent result.
    log = EventLog(container)
    responses = await asyncio.gather(
        erase(client, alice),
        client.delete(f"/api/v1/admin/users/{alice.id}", headers=admin.headers),
        client.delete(f"/api/v1/admin/users/{alice.id}", headers=admin.headers),
        erase(client, alice),
    )
    assert all(r.status_code in (204, 401, 403) for r in responses), [r.text for r in responses]
    assert sum(r.status_code == 204 for r in responses) >= 1
    await erased(log, alice)
    assert await texts_in_database(container, "burst") == 0
    history = (await client.get(f"/api/v1/conversations/{group['id']}/messages", headers=bob.headers)).json()
    assert all(m["deleted"] for m in history["messages"] if m["sender_id"] == alice.id)
    async with container.db.read() as conn:
        left = (await conn.execute(select(reactions).where(reactions.c.user_id == alice.id))).first()
    assert left is None
    # Her reactions are gone from his messages too.
    assert all(not m["reactions"] for m in history["messages"] if m["sender_id"] == bob.id)
    seqs = [m["seq"] for m in history["messages"]]
    assert seqs == sorted(set(seqs))


async def test_erasure_closes_sockets(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            alice = await make_user(http, "alice")
            socket = await identified(server.base_url, alice.access_token)
            try:
                assert (await erase(http, alice)).status_code == 204
                assert await socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
            finally:
                await socket.close()


async def test_an_erased_account_keeps_no_credentials_and_no_picture(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Erasure meets 2FA, reset links and profile pictures: none of them survive it, and an
    administrator cannot hand the erased account a password again."""
    from parley.services.accounts import AVATAR_SIZES
    from parley.services.avatars import blob_key
    from tests.support.account_helpers import enable_2fa, make_staff
    from tests.support.attachment_helpers import jpeg_with_exif

    admin = await make_staff(client, container, "root", "admin")
    bob = await make_user(client, "bob")
    files = {"file": ("me.jpg", jpeg_with_exif(300, 300), "image/jpeg")}
    pictured = await client.put("/api/v1/users/me/avatar", files=files, headers=bob.headers)
    assert pictured.status_code == 200, pictured.text
    async with container.db.read() as conn:
        picture = (await conn.execute(select(users.c.avatar_key).where(users.c.id == bob.id))).scalar()
    assert isinstance(picture, str)
    picture_blobs = [blob_key(bob.id, picture, size) for size in AVATAR_SIZES.values()]
    assert all([await container.blobs.exists(key) for key in picture_blobs])
    await enable_2fa(client, bob)
    link = await client.post(f"/api/v1/admin/users/{bob.id}/password-reset-link", headers=admin.headers)
    assert link.status_code == 200, link.text
    erased = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": TEST_PASSWORD}, headers=bob.headers
    )
    assert erased.status_code == 204, erased.text

    seen = await client.get(f"/api/v1/admin/users/{bob.id}", headers=admin.headers)
    assert seen.json()["user"]["two_factor"] is False, seen.text
    async with container.db.read() as conn:
        key = (await conn.execute(select(users.c.avatar_key).where(users.c.id == bob.id))).scalar()
    assert key is None
    # The picture's files went with it, not only the reference to them.
    assert not any([await container.blobs.exists(key) for key in picture_blobs])
    # The link issued before the erasure is gone, and no new one is issued.
    token = link.json()["url"].rsplit("token=", 1)[1]
    reset = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "a new password 1"}
    )
    assert reset.status_code == 400, reset.text
    again = await client.post(f"/api/v1/admin/users/{bob.id}/password-reset-link", headers=admin.headers)
    assert again.status_code == 409 and code(again) == "ACCOUNT_ERASED", again.text
