"""Every event type reaches every member's sessions, in order, whether the change came over
REST or the socket — on a real server over real sockets. Then SIGTERM: every session is
closed with 1001 and the server exits cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sized
from functools import partial
from pathlib import Path

import pytest

from parley.client import ParleyClient
from tests.support.gateway_helpers import WAIT, EventLog, login, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")

Seen = list[tuple[str, int | None]]


def timeline(log: EventLog, conversation_id: str) -> Seen:
    return [(e.type, e.data.get("seq")) for e in log.events if e.conversation_id == conversation_id]


def kinds(log: EventLog, prefix: str) -> list[str]:
    return [e.type for e in log.events if e.type.startswith(prefix)]


def at_least(count: int, select: Callable[[], Sized]) -> Callable[[object], bool]:
    """A wait_for predicate: ``select()`` has reached ``count`` items."""
    return lambda _: len(select()) >= count


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_dm_and_group_see_every_event_in_order(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        base = server.base_url
        clients: dict[str, ParleyClient] = {}
        logs: dict[str, EventLog] = {}
        try:
            for name in ("alice", "bob", "carol", "dave", "erin"):
                clients[name] = await new_user(base, name)
            clients["alice2"] = await login(base, "alice", device="phone")
            for name, client in clients.items():
                logs[name] = await open_log(client, auto_delivered=False)
            await _direct_conversation(clients, logs)
            await _group_conversation(clients, logs)

            # SIGTERM: every session hears 1001, the server shuts down cleanly.
            graceful = await asyncio.to_thread(server.terminate)
            assert graceful, server.log()[-3000:]
            for log in logs.values():
                await wait_until(partial(list.__contains__, log.session.close_codes, 1001))
            assert "Traceback" not in server.log()
        finally:
            for log in logs.values():
                await log.close()
            for client in clients.values():
                await client.aclose()


async def _direct_conversation(clients: dict[str, ParleyClient], logs: dict[str, EventLog]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    alice_socket, bob_socket = logs["alice"].session, logs["bob"].session
    watchers = ("alice", "alice2", "bob")

    dm = await alice.create_direct(bob.user_id)  # REST
    cid = dm["id"]
    first = (await alice_socket.send_message(cid, "hello bob"))["message"]  # socket
    second = await bob.send_message(cid, "hi alice")  # REST
    await bob_socket.edit_message(second["id"], "hi alice!")  # socket
    await alice.add_reaction(second["id"], "👍")  # REST
    await alice_socket.remove_reaction(second["id"], "👍")  # socket
    await bob_socket.start_typing(cid)
    await bob_socket.stop_typing(cid)
    await alice_socket.mark_delivered(cid, 5)  # socket
    await alice.mark_read(cid, 5)  # REST (delivered is already 5: only receipt.read)
    await bob.delete_message(second["id"])  # REST
    await alice.request_contact(bob.user_id)
    await bob.accept_contact(alice.user_id)
    await alice.remove_contact(bob.user_id)

    expected: Seen = [
        ("conversation.created", 0),
        ("message.created", 1),
        ("message.created", 2),
        ("message.updated", 3),
        ("reaction.added", 4),
        ("reaction.removed", 5),
        ("typing.started", None),
        ("typing.stopped", None),
        ("receipt.delivered", 5),
        ("receipt.read", 5),
        ("message.deleted", 6),
    ]
    for name in watchers:
        log = logs[name]
        await log.wait_for(at_least(3, partial(kinds, log, "contact.")))
        await log.wait_for(at_least(len(expected), partial(timeline, log, cid)))
        assert timeline(log, cid) == expected, name
        assert kinds(log, "contact.") == [
            "contact.requested",
            "contact.accepted",
            "contact.removed",
        ]
        assert not any(e.replayed for e in log.events), "everything arrived live"
        created = [e for e in log.events if e.type == "message.created"]
        assert created[0].data["message"]["id"] == first["id"]
        assert created[0].data["message"]["content"] == "hello bob"
        updated = log.of("message.updated")[0].data["message"]
        assert updated["content"] == "hi alice!" and updated["edited_at"] is not None
        assert log.of("reaction.added")[0].data["emoji"] == "👍"
        assert log.of("receipt.read")[0].data["user_id"] == alice.user_id
        assert log.of("message.deleted")[0].data["message"]["deleted"] is True
    # Nobody outside the conversation heard of it.
    for name in ("carol", "dave", "erin"):
        assert timeline(logs[name], cid) == []


async def _group_conversation(clients: dict[str, ParleyClient], logs: dict[str, EventLog]) -> None:
    alice, bob, carol, dave, erin = (clients[n] for n in ("alice", "bob", "carol", "dave", "erin"))
    group = await alice.create_group("Team", [bob.user_id, carol.user_id, dave.user_id])
    gid = group["id"]
    for name in ("alice", "alice2", "bob", "carol", "dave"):
        await logs[name].wait_for(at_least(1, partial(timeline, logs[name], gid)))
    await logs["carol"].session.send_message(gid, "hello team")  # seq 2, socket
    await dave.send_message(gid, "hey")  # seq 3, REST
    await alice.add_members(gid, [erin.user_id])  # seq 4
    await logs["erin"].wait_for(at_least(1, partial(timeline, logs["erin"], gid)))
    await logs["erin"].session.send_message(gid, "thanks for adding me")  # seq 5, socket
    await alice.set_role(gid, bob.user_id, "admin")  # seq 6
    await alice.update_conversation(gid, name="Team 2")  # seq 7
    await bob.remove_member(gid, dave.user_id)  # seq 8
    await carol.send_message(gid, "dave is gone")  # seq 9: not for dave
    await alice.delete_conversation(gid)
    # A later event for dave: when it arrives, anything of the group before it would have.
    await alice.request_contact(dave.user_id)

    joined: Seen = [
        ("message.created", 4),
        ("member.added", 4),
        ("message.created", 5),
        ("message.created", 6),
        ("member.updated", 6),
        ("message.created", 7),
        ("conversation.updated", 7),
        ("message.created", 8),
        ("member.removed", 8),
    ]
    founding: Seen = [("conversation.created", 1), ("message.created", 2), ("message.created", 3)]
    after_removal: Seen = [("message.created", 9), ("conversation.deleted", None)]
    expected = {
        "alice": founding + joined + after_removal,
        "alice2": founding + joined + after_removal,
        "bob": founding + joined + after_removal,
        "carol": founding + joined + after_removal,
        "erin": joined + after_removal,
        "dave": founding + joined,
    }
    for name, seen in expected.items():
        log = logs[name]
        if name == "dave":
            await log.wait_type("contact.requested")
        else:
            await log.wait_type("conversation.deleted")
        assert timeline(log, gid) == seen, name
        system = [
            e.data["message"]
            for e in log.events
            if e.type == "message.created"
            and e.conversation_id == gid
            and e.data["message"]["kind"] == "system"
        ]
        assert [m["system_event"]["type"] for m in system] == [
            "member.added",
            "member.role",
            "conversation.updated",
            "member.removed",
        ]
        assert not any(e.replayed for e in log.events)
    added = logs["carol"].of("member.added")[0].data
    assert added["user_ids"] == [erin.user_id] and added["member_count"] == 5
    assert logs["carol"].of("conversation.updated")[0].data["changes"] == {"name": "Team 2"}
    assert logs["dave"].of("member.removed")[0].data["user_ids"] == [dave.user_id]
    # The SDK stopped tracking conversations its user left or that were deleted.
    assert logs["dave"].session.position(gid) is None
    assert logs["alice"].session.position(gid) is None
