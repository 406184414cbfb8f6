"""Archiving a conversation (DESIGN §6.3) on SQLite and PostgreSQL: a site admin archives
it (``PATCH /api/v1/admin/conversations/{id}``), members see it archived and are told, sends
are refused with ``CONVERSATION_ARCHIVED`` (403) while the history stays readable, a burst
of sends racing the archive commits nothing after it, unarchiving opens it again, each
change is audited once, and bad input gets a 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from parley.client import ParleyClient
from parley.container import Container
from parley.services.events import Event
from tests.conftest import NO_SEND_LIMITS, TEST_PASSWORD, make_user
from tests.support.account_helpers import make_staff
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.gateway_helpers import RawSocket, create_admin, new_user, running_server

pytestmark = pytest.mark.usefixtures("backend")


def url(conversation_id: str) -> str:
    return f"/api/v1/admin/conversations/{conversation_id}"


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_an_archived_conversation_is_read_only(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Old project")
    before = await send(client, bob, group["id"], "the last word")
    heard: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        heard.extend(e for e in events if e.type == "conversation.updated")

    container.events.add_listener(listen)
    # Members and moderators cannot archive; only a site admin.
    assert (await client.patch(url(group["id"]), json={"archived": True}, headers=alice.headers)).status_code == 403
    archived = await client.patch(url(group["id"]), json={"archived": True}, headers=admin.headers)
    assert archived.status_code == 200, archived.text
    assert archived.json() == {"conversation_id": group["id"], "archived": True}
    assert [e.data["changes"] for e in heard] == [{"archived": True}]
    # Shown as archived to members, in the list and alone.
    shown = (await client.get(f"/api/v1/conversations/{group['id']}", headers=bob.headers)).json()
    assert shown["conversation"]["archived"] is True and shown["conversation"]["archived_at"]
    listed = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["conversations"]
    assert [c["archived"] for c in listed if c["id"] == group["id"]] == [True]
    # Sends refused with a stable code; the history is still readable.
    refused = await client.post(
        f"/api/v1/conversations/{group['id']}/messages", json={"content": "hello?"}, headers=bob.headers
    )
    assert refused.status_code == 403 and code(refused) == "CONVERSATION_ARCHIVED"
    history = (await client.get(f"/api/v1/conversations/{group['id']}/messages", headers=alice.headers)).json()
    assert before["id"] in [m["id"] for m in history["messages"]]
    # Archiving again changes nothing and is audited once.
    assert (await client.patch(url(group["id"]), json={"archived": True}, headers=admin.headers)).status_code == 200
    assert len(heard) == 1
    admin_list = (await client.get("/api/v1/admin/conversations", headers=admin.headers)).json()
    assert [c["archived"] for c in admin_list["conversations"] if c["id"] == group["id"]] == [True]
    # Unarchived: open again.
    assert (await client.patch(url(group["id"]), json={"archived": False}, headers=admin.headers)).status_code == 200
    await send(client, bob, group["id"], "back again")
    shown = (await client.get(f"/api/v1/conversations/{group['id']}", headers=bob.headers)).json()
    assert shown["conversation"]["archived"] is False and shown["conversation"]["archived_at"] is None
    audit = (await client.get("/api/v1/admin/audit", headers=admin.headers)).json()["entries"]
    assert [(e["action"], e["actor_id"], e["target_id"]) for e in audit if e["action"].startswith("conversation.")] == [
        ("conversation.unarchived", admin.id, group["id"]),
        ("conversation.archived", admin.id, group["id"]),
    ]
    # Direct conversations can be archived too.
    direct = await open_direct(client, alice, bob)
    assert (await client.patch(url(direct["id"]), json={"archived": True}, headers=admin.headers)).status_code == 200
    refused = await client.post(
        f"/api/v1/conversations/{direct['id']}/messages", json={"content": "hi"}, headers=alice.headers
    )
    assert code(refused) == "CONVERSATION_ARCHIVED"


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_no_send_commits_after_the_archive(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    path = f"/api/v1/conversations/{group['id']}/messages"
    sends = [client.post(path, json={"content": f"burst {i}"}, headers=(alice, bob)[i % 2].headers) for i in range(20)]
    archive = client.patch(url(group["id"]), json={"archived": True}, headers=admin.headers)
    *responses, archived = await asyncio.gather(*sends, archive)
    assert archived.status_code == 200
    assert all(r.status_code == 201 or code(r) == "CONVERSATION_ARCHIVED" for r in responses), [
        r.text for r in responses
    ]
    history = (await client.get(path, params={"limit": 100}, headers=alice.headers)).json()["messages"]
    marks = [m["seq"] for m in history if (m["system_event"] or {}).get("changes") == {"archived": True}]
    assert len(marks) == 1
    accepted = {r.json()["message"]["id"] for r in responses if r.status_code == 201}
    assert all(m["seq"] < marks[0] for m in history if m["id"] in accepted)
    # Concurrent archive and unarchive requests: no 500, a consistent final state.
    toggles = await asyncio.gather(
        *(client.patch(url(group["id"]), json={"archived": i % 2 == 0}, headers=admin.headers) for i in range(6))
    )
    assert all(r.status_code == 200 for r in toggles)


async def test_archive_bad_input(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="Solo")
    for body in ({}, {"archived": "yes"}, {"archived": 1}, {"archived": None}, {"archived": True, "extra": 1}):
        response = await client.patch(url(group["id"]), json=body, headers=admin.headers)
        assert response.status_code == 400, (body, response.text)
    bad = await client.patch(url(group["id"]), content=b'{"archived": tru\x00e}', headers=admin.headers)
    assert bad.status_code == 400
    for target in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "9" * 400):
        response = await client.patch(url(target), json={"archived": True}, headers=admin.headers)
        assert response.status_code in (400, 404), response.text
    assert (await client.patch(url(group["id"]), json={"archived": True})).status_code == 401


async def test_a_send_over_the_socket_gets_an_error_frame(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        await asyncio.to_thread(create_admin, server, "root")
        admin = await new_user_or_login(server.base_url, "root")
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        socket: RawSocket | None = None
        try:
            dm = await alice.create_direct(bob.user_id)
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                archived = await http.patch(
                    url(dm["id"]),
                    json={"archived": True},
                    headers={"Authorization": f"Bearer {admin.tokens.access_token}"},  # type: ignore[union-attr]
                )
            assert archived.status_code == 200, archived.text
            socket = await RawSocket.open(server.base_url)
            await socket.identify(alice.tokens.access_token)  # type: ignore[union-attr]
            answer = await socket.call("1", "message.send", {"conversation_id": dm["id"], "content": "hi"})
            assert answer["op"] == "error" and answer["error"]["code"] == "CONVERSATION_ARCHIVED", answer
        finally:
            if socket is not None:
                await socket.close()
            for client in (admin, alice, bob):
                await client.aclose()


async def new_user_or_login(base_url: str, username: str) -> ParleyClient:
    """A client logged in as an existing account (one ``parley create-admin`` made)."""
    client = ParleyClient(base_url)
    await client.login(username, TEST_PASSWORD)
    return client
