"""``kill -9`` the server while clients send over the socket, restart it: every message
that was acknowledged is there exactly once for every member after the clients resume; a
send that was not acknowledged raised (never reported as sent), and resending it under its
``client_msg_id`` never makes a duplicate — even when the lost ack was for a committed
message."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from parley.client import ConnectionLost, ParleyClient
from tests.support.gateway_helpers import WAIT, EventLog, new_user, open_log, server_env
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.usefixtures("backend")

PER_SENDER = 40
KILL_AFTER_ACKS = 25


async def test_kill_9_keeps_every_acked_message_exactly_once(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    env = server_env(tmp_path, database_url)
    server = ServerProcess(free_port, env, tmp_path)
    await asyncio.to_thread(server.start)
    clients: list[ParleyClient] = []
    logs: dict[str, EventLog] = {}
    restarted: ServerProcess | None = None
    try:
        for name in ("alice", "bob", "carol"):
            clients.append(await new_user(server.base_url, name))
        alice, bob, carol = clients
        group = await alice.create_group("Crash", [bob.user_id, carol.user_id])
        gid = group["id"]
        for client in clients:
            logs[client.user["username"]] = await open_log(client)  # type: ignore[index]

        acked: dict[str, str] = {}  # client_msg_id -> message id
        failed: list[str] = []
        killed = asyncio.Event()

        async def sender(name: str) -> None:
            session = logs[name].session
            for index in range(PER_SENDER):
                client_msg_id = f"{name}-{index}"
                try:
                    ack = await session.send_message(
                        gid,
                        f"{name} {index}",
                        client_msg_id=client_msg_id,
                        retry=False,
                        timeout=WAIT,
                    )
                except ConnectionLost:
                    failed.append(client_msg_id)
                    continue
                assert ack["created"] is True
                acked[client_msg_id] = ack["message"]["id"]
                if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                    killed.set()

        async def crash_and_restart() -> None:
            nonlocal restarted
            await killed.wait()
            server.kill()  # SIGKILL: no shutdown, no flush, no close frames
            restarted = ServerProcess(free_port, env, tmp_path)
            await asyncio.to_thread(restarted.start)

        await asyncio.gather(sender("alice"), sender("bob"), crash_and_restart())
        assert failed, "the kill landed while no call was in flight"
        assert not set(failed) & set(acked), "a send was reported both ways"

        # What the database kept of the unacknowledged sends (possibly committed, ack lost).
        by_client_id = await _stored(carol, gid)
        for client_msg_id, message_id in acked.items():
            assert by_client_id[client_msg_id] == [message_id], client_msg_id
        committed_unacked = {c for c in failed if c in by_client_id}
        print(
            f"\nkill -9: {len(acked)} sends acked, {len(failed)} raised ConnectionLost, "
            f"{len(committed_unacked)} of those had committed (only the ack was lost)"
        )

        # Resend what failed, under the same client_msg_id: never a second copy.
        for client_msg_id in failed:
            name = client_msg_id.split("-")[0]
            index = client_msg_id.split("-")[1]
            ack = await logs[name].session.send_message(
                gid, f"{name} {index}", client_msg_id=client_msg_id, timeout=WAIT
            )
            assert ack["created"] is (client_msg_id not in committed_unacked)
            if client_msg_id in committed_unacked:
                assert [ack["message"]["id"]] == by_client_id[client_msg_id]
            acked[client_msg_id] = ack["message"]["id"]

        final = await _stored(carol, gid)
        assert sorted(final) == sorted(
            f"{n}-{i}" for n in ("alice", "bob") for i in range(PER_SENDER)
        )
        assert all(len(ids) == 1 for ids in final.values())
        assert {ids[0] for ids in final.values()} == set(acked.values())

        # Every member's session resumed and delivered each message exactly once, in order.
        total = 2 * PER_SENDER
        for name, log in logs.items():
            await log.wait_for(partial(_has_texts, log, total))
            texts = _texts(log)
            assert len(texts) == total and set(texts) == set(acked.values()), name
            seqs = [e.data["seq"] for e in log.of("message.created")]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), name
            assert any(e.replayed for e in log.events) or not committed_unacked
            assert 1006 in log.session.close_codes  # the kill: no close frame
    finally:
        for log in logs.values():
            await log.close()
        for client in clients:
            await client.aclose()
        server.kill()
        if restarted is not None:
            restarted.kill()


def _has_texts(log: EventLog, count: int, _: object) -> bool:
    return len(_texts(log)) >= count


def _texts(log: EventLog) -> list[str]:
    return [
        e.data["message"]["id"]
        for e in log.of("message.created")
        if e.data["message"]["kind"] == "text"
    ]


async def _stored(client: ParleyClient, conversation_id: str) -> dict[str, list[str]]:
    """client_msg_id -> ids of the stored text messages carrying it."""
    found: dict[str, list[str]] = {}
    messages, _ = await client.changes_since(conversation_id, 0)
    for message in messages:
        if message["kind"] == "text":
            found.setdefault(message["client_msg_id"], []).append(message["id"])
    return found


async def test_sigterm_answers_every_call_it_committed(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    """Graceful shutdown: calls in progress finish and are acknowledged before the 1001, so
    a send that raised was never committed — unlike after kill -9, nothing needs a resend
    to find out."""
    env = server_env(tmp_path, database_url)
    server = ServerProcess(free_port, env, tmp_path)
    await asyncio.to_thread(server.start)
    clients: list[ParleyClient] = []
    logs: dict[str, EventLog] = {}
    restarted: ServerProcess | None = None
    try:
        for name in ("alice", "bob"):
            clients.append(await new_user(server.base_url, name))
        alice, bob = clients
        dm = await alice.create_direct(bob.user_id)
        for client in clients:
            logs[client.user["username"]] = await open_log(client)  # type: ignore[index]
        acked: dict[str, str] = {}
        failed: list[str] = []
        stopping = asyncio.Event()

        async def sender(name: str) -> None:
            for index in range(PER_SENDER):
                client_msg_id = f"{name}-{index}"
                try:
                    ack = await logs[name].session.send_message(
                        dm["id"], client_msg_id, client_msg_id=client_msg_id, retry=False
                    )
                except ConnectionLost:
                    failed.append(client_msg_id)
                    continue
                acked[client_msg_id] = ack["message"]["id"]
                if len(acked) >= KILL_AFTER_ACKS:
                    stopping.set()

        async def stop_and_restart() -> None:
            nonlocal restarted
            await stopping.wait()
            assert await asyncio.to_thread(server.terminate), server.log()[-2000:]
            restarted = ServerProcess(free_port, env, tmp_path)
            await asyncio.to_thread(restarted.start)

        await asyncio.gather(sender("alice"), sender("bob"), stop_and_restart())
        stored = await _stored(bob, dm["id"])
        for client_msg_id, message_id in acked.items():
            assert stored[client_msg_id] == [message_id]
        assert not set(failed) & set(stored), "committed but never acknowledged"
        assert len(acked) + len(failed) == 2 * PER_SENDER
        for log in logs.values():
            assert 1001 in log.session.close_codes
    finally:
        for log in logs.values():
            await log.close()
        for client in clients:
            await client.aclose()
        server.kill()
        if restarted is not None:
            restarted.kill()
