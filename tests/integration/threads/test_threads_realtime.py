"""Threads and pins live, on a real server over real sockets (SQLite and PostgreSQL): a
reply sent over the socket reaches every member as ``message.created``, followed by the
root's new summary as ``message.updated`` — consecutive seqs, so no client sees a gap —
following a thread tells the user's own sessions with ``thread.updated``, and a pin is
the message's new version followed by its system line. Bad params get an
``error`` frame with the call's ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.client import ParleyClient
from tests.support.gateway_helpers import EventLog, RawSocket, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")


async def test_a_thread_reply_and_the_root_summary_arrive_live(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        clients: list[ParleyClient] = []
        logs: list[EventLog] = []
        try:
            alice = await new_user(server.base_url, "alice")
            bob = await new_user(server.base_url, "bob")
            clients += [alice, bob]
            alice_log, bob_log = await open_log(alice), await open_log(bob)
            logs += [alice_log, bob_log]
            group = await alice.create_group("Team", [bob.user_id])
            cid = group["id"]
            root = await alice.send_message(cid, "a question")

            ack = await bob_log.session.send_message(cid, "an answer", thread_root_id=root["id"])
            reply = ack["message"]
            assert reply["thread_root_id"] == root["id"] and reply["seq"] == root["seq"] + 1

            def root_updated(events: list) -> bool:
                return any(
                    e.type == "message.updated" and e.data["message"]["id"] == root["id"] for e in events
                )

            for log in (alice_log, bob_log):
                events = await log.wait_for(root_updated)
                timeline = [
                    (e.type, e.data["seq"]) for e in events if e.conversation_id == cid and e.data.get("seq", 0) > root["seq"]
                ]
                assert timeline[:2] == [("message.created", root["seq"] + 1), ("message.updated", root["seq"] + 2)]
                update = next(e for e in events if e.type == "message.updated")
                assert update.data["message"]["thread"]["reply_count"] == 1
                assert update.data["message"]["thread"]["participant_ids"] == [bob.user_id]

            # Following by choice reaches the user's own sessions only.
            await alice.request("DELETE", f"/api/v1/messages/{root['id']}/thread/follow")
            state = await alice_log.wait_for(lambda events: any(e.type == "thread.updated" for e in events))
            update = next(e for e in state if e.type == "thread.updated")
            assert update.data["root_id"] == root["id"] and update.data["following"] is False
            assert not bob_log.of("thread.updated")

            # A pin: the message's new version, then the system line, live and in order.
            pinned = (await alice.request("PUT", f"/api/v1/messages/{reply['id']}/pin"))["message"]

            def pin_line(events: list) -> bool:
                return any(
                    e.type == "message.created" and (e.data["message"]["system_event"] or {}).get("type") == "message.pinned"
                    for e in events
                )

            events = await bob_log.wait_for(pin_line)
            tail = [(e.type, e.data["seq"]) for e in events if e.data.get("seq", 0) >= pinned["version_seq"]]
            assert tail[:2] == [("message.updated", pinned["version_seq"]), ("message.created", pinned["version_seq"] + 1)]

            # Bad params over the socket: an error frame naming the call.
            raw = await RawSocket.open(server.base_url)
            try:
                await raw.identify(await bob.access_token())
                for params in (
                    {"conversation_id": cid, "content": "x", "thread_root_id": "nope"},
                    {"conversation_id": cid, "content": "x", "thread_root_id": reply["id"]},
                    {"conversation_id": cid, "content": "x", "thread_broadcast": True},
                    {"conversation_id": cid, "content": "x", "thread_root_id": root["id"], "thread_broadcast": 1},
                ):
                    answer = await raw.call("bad", "message.send", params)
                    assert answer["op"] == "error" and answer["ref"] == "bad", answer
                    assert answer["error"]["code"] in {"VALIDATION_ERROR", "INVALID_FRAME"}
            finally:
                await raw.close()
        finally:
            for log in logs:
                await log.close()
            for client in clients:
                await client.aclose()
