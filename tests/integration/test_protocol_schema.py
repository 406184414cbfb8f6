"""The generated protocol schema (docs/protocol.schema.json) is current, complete, and true:
every frame a real server sends in a session that touches every event type validates
against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from parley.gateway import schema
from parley.gateway.handlers import METHODS
from parley.wire.events import EVENTS, EventType
from tests.support.gateway_helpers import WAIT, RawSocket, create_admin, login, new_user, running_server
from tests.support.paths import REPO

# Event types the session below does not produce, and where their frames are tested instead.
NOT_IN_THIS_SESSION = {
    "contact.requested": "tests/integration/gateway/test_gateway_events.py",
    # The sweep deletes messages older than a retention period: time has to pass.
    "messages.expired": "tests/integration/lifecycle/test_lifecycle_retention.py",
    # Sent after the erased user's sessions were closed: no socket is left to see it.
    "user.erased": "tests/integration/lifecycle/test_lifecycle_erasure.py",
}


def test_generated_files_are_current() -> None:
    stale = schema.stale(REPO)
    assert not stale, f"stale: {[str(p) for p in stale]}; run `make protocol`"


def test_every_event_and_method_is_in_the_schema() -> None:
    assert set(EVENTS) == set(EventType), "each EventType needs its row in EVENTS"
    document = json.loads((REPO / schema.SCHEMA_PATH).read_text())
    Draft202012Validator.check_schema(document)
    assert set(document["x-parley-events"]) == {event.value for event in EventType}
    assert set(document["x-parley-methods"]) == set(METHODS)


def test_clients_take_their_sets_from_the_protocol() -> None:
    socket_js = (REPO / "src/parley/web/static/socket.js").read_text()
    assert 'from "./protocol.js"' in socket_js
    assert '"message.created"' not in socket_js  # the seq set is not restated


class Recorder:
    """Every frame one raw socket receives, and a way to wait for an event type."""

    def __init__(self, socket: RawSocket) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket.ws:
                async with self._changed:
                    self.frames.append(json.loads(raw))
                    self._changed.notify_all()

    def types(self) -> set[str]:
        return {frame["type"] for frame in self.frames if frame["op"] == "event"}

    async def wait_event(self, event_type: str) -> None:
        async def seen() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: event_type in self.types())

        try:
            await asyncio.wait_for(seen(), WAIT)
        except TimeoutError:
            raise AssertionError(f"{event_type} not seen; got {sorted(self.types())}") from None

    async def call(self, ref: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.socket.send({"op": "call", "ref": ref, "method": method, "params": params})

        async def answered() -> dict[str, Any]:
            async with self._changed:
                await self._changed.wait_for(lambda: any(f.get("ref") == ref for f in self.frames))
            return next(f for f in self.frames if f.get("ref") == ref)

        return await asyncio.wait_for(answered(), WAIT)


@contextlib.asynccontextmanager
async def recorder(base_url: str, token: str) -> AsyncIterator[Recorder]:
    socket = await RawSocket.open(base_url)
    await socket.send({"op": "identify", "token": token})
    record = Recorder(socket)
    try:
        yield record
    finally:
        await socket.close()
        record._task.cancel()


@pytest.mark.usefixtures("backend")
async def test_every_frame_of_a_real_session_fits_the_schema(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    document = json.loads((REPO / schema.SCHEMA_PATH).read_text())
    for name, definition in document["$defs"].items():
        if name.endswith("Payload"):  # here: no field the schema does not name
            definition["additionalProperties"] = False
    validator = Draft202012Validator(document)
    async with running_server(tmp_path, database_url, free_port) as server:
        base = server.base_url
        alice = await new_user(base, "alice")
        bob = await new_user(base, "bob")
        carol = await new_user(base, "carol")
        alice_phone = await login(base, "alice", device="phone")
        try:
            async with (
                recorder(base, await alice.access_token()) as a,
                recorder(base, await bob.access_token()) as b,
            ):
                await a.call("r0", "typing.stop", {"conversation_id": "C_NONE"})  # an error frame
                await bob.request_contact(alice.user_id)
                await alice.accept_contact(bob.user_id)
                await b.wait_event("contact.accepted")
                dm = await alice.create_direct(bob.user_id)
                await b.wait_event("conversation.created")
                sent = await a.call("r1", "message.send", {"conversation_id": dm["id"], "content": "hi"})
                message_id = sent["data"]["message"]["id"]
                await a.call("r2", "message.edit", {"message_id": message_id, "content": "hello"})
                await b.call("r3", "reaction.add", {"message_id": message_id, "emoji": "👍"})
                await b.call("r4", "reaction.remove", {"message_id": message_id, "emoji": "👍"})
                # A report, resolved by a site administrator: the reporter hears of it.
                reported = await bob.request(
                    "POST", f"/api/v1/messages/{message_id}/report", json={"reason": "spam"}
                )
                await asyncio.to_thread(create_admin, server, "root")
                root = await login(base, "root")
                try:
                    await root.request(
                        "POST",
                        f"/api/v1/admin/reports/{reported['report']['id']}/resolve",
                        json={"action": "dismiss"},
                    )
                finally:
                    await root.aclose()
                await b.wait_event("report.resolved")
                await alice.request("PUT", f"/api/v1/messages/{message_id}/thread/follow")
                await a.wait_event("thread.updated")
                # A slash command answered only to its caller.
                await alice.request("POST", f"/api/v1/conversations/{dm['id']}/commands", json={"text": "/mute"})
                await a.wait_event("command.response")
                await alice.request("POST", "/api/v1/users/me/export")
                await a.wait_event("export.updated")
                await b.call("r5", "delivered.mark", {"conversation_id": dm["id"], "seq": 1})
                await b.call("r6", "read.mark", {"conversation_id": dm["id"], "seq": 1})
                await b.call("r7", "typing.start", {"conversation_id": dm["id"]})
                await b.call("r8", "typing.stop", {"conversation_id": dm["id"]})
                await b.call("r9", "presence.set", {"status": "away"})
                await a.call("r10", "message.delete", {"message_id": message_id})
                # End-to-end encryption: devices appear, the DM is switched on, and the first
                # encrypted message hands its sender key to bob's device.
                await alice.enable_e2ee(tmp_path / "alice-keys")
                await bob.enable_e2ee(tmp_path / "bob-keys")
                await a.wait_event("device.updated")
                await alice.update_conversation(dm["id"], encrypted=True)
                await alice.send_message(dm["id"], "for bob only")
                await b.wait_event("to_device")
                await bob.update_me(display_name="Bobby")
                group = await alice.create_group("Team", [bob.user_id])
                await alice.add_members(group["id"], [carol.user_id])
                await alice.set_role(group["id"], bob.user_id, "admin")
                await alice.update_conversation(group["id"], topic="Plans")
                await alice.remove_member(group["id"], carol.user_id)
                await alice.request(
                    "PATCH", f"/api/v1/conversations/{group['id']}/settings", json={"notify": "mentions"}
                )
                await alice.request("PATCH", "/api/v1/users/me/notifications", json={"email_digest": False})
                await alice_phone.logout()
                await alice.delete_conversation(group["id"])
                await bob.remove_contact(alice.user_id)
                for last in ("conversation.deleted", "contact.removed"):
                    await a.wait_event(last)
                    await b.wait_event(last)
                for kind in ("session.revoked", "user.settings.updated", "conversation.settings.updated"):
                    await a.wait_event(kind)
                for kind in ("typing.started", "typing.stopped", "presence.updated", "user.updated"):
                    await a.wait_event(kind)
                frames = a.frames + b.frames
        finally:
            for client in (alice, bob, carol, alice_phone):
                await client.aclose()
    ops = {frame["op"] for frame in frames}
    assert {"ready", "ack", "error", "event"} <= ops
    seen = {frame["type"] for frame in frames if frame["op"] == "event"}
    assert seen >= {event.value for event in EventType} - NOT_IN_THIS_SESSION.keys(), sorted(seen)
    for frame in frames:
        errors = [error.message for error in validator.iter_errors(frame)]
        assert not errors, (frame, errors[:3])
