"""Pipelined sends: a client may send many ``message.send`` frames without waiting; they
commit in the order sent, and every answer — acks, errors, pongs — comes back in the order
of the frames. On a real server, over a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from parley.client import ParleyClient
from parley.ids import new_id
from tests.support.gateway_helpers import WAIT, RawSocket, login, metric, new_user, running_server

BURST = 40


async def answers(socket: RawSocket, count: int) -> list[dict[str, Any]]:
    """The next ``count`` answers (ack, error, pong), skipping events."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        frame = await socket.recv()
        if frame["op"] in ("ack", "error", "pong"):
            got.append(frame)
    return got


async def test_a_burst_of_sends_commits_and_answers_in_order(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        async with alice_in_a_direct_conversation(server.base_url) as (alice, socket, direct):
            frames: list[dict[str, Any]] = []
            for i in range(BURST):
                content = "" if i == 7 else f"burst {i}"  # one refused send, mid-burst
                params = {"conversation_id": direct["id"], "content": content, "client_msg_id": f"c{i}"}
                if i == 12:  # one refused by its batch, at commit: a reply to no message
                    params["reply_to_id"] = new_id()
                frames.append({"op": "call", "ref": f"r{i}", "method": "message.send", "params": params})
            frames.insert(20, {"op": "call", "ref": "bad", "method": "message.send", "params": {"nope": 1}})
            frames.insert(30, {"op": "ping"})
            # All at once: no frame waits for an earlier answer.
            await asyncio.wait_for(_send_all(socket, frames), WAIT)
            got = await asyncio.wait_for(answers(socket, len(frames)), WAIT)

            expected = [f.get("ref", "pong") for f in frames]
            assert [g.get("ref", "pong") for g in got] == expected
            by_ref = {g.get("ref"): g for g in got}
            assert by_ref["r7"]["op"] == "error" and by_ref["bad"]["op"] == "error"
            assert by_ref["bad"]["error"]["code"] == "VALIDATION_ERROR"
            assert by_ref["r12"]["op"] == "error", by_ref["r12"]
            assert by_ref["r12"]["error"]["details"][0]["field"] == "reply_to_id"
            written = [i for i in range(BURST) if i not in (7, 12)]
            seqs = [by_ref[f"r{i}"]["data"]["message"]["seq"] for i in written]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # commit order = send order
            history = await alice.history(direct["id"], limit=100)
            stored = [m["content"] for m in sorted(history["messages"], key=lambda m: m["seq"])]
            assert stored == [f"burst {i}" for i in written]
            # Pipelined, not one at a time: handled serially, each send would have waited
            # for the previous one's commit and been a batch of its own.
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                text = (await http.get("/metrics")).text
            batches = metric(text, "parley_group_commit_batch_size_count")
            assert metric(text, "parley_group_commit_batch_size_sum") == BURST - 2
            assert batches < BURST - 2, batches


async def test_shutdown_answers_every_queued_send_before_closing(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        async with alice_in_a_direct_conversation(server.base_url) as (alice, socket, direct):
            frames = [
                {
                    "op": "call",
                    "ref": f"r{i}",
                    "method": "message.send",
                    "params": {"conversation_id": direct["id"], "content": f"last words {i}"},
                }
                for i in range(BURST)
            ]
            await _send_all(socket, frames)
            await asyncio.wait_for(_until_first_ack(socket), WAIT)
            graceful = await asyncio.to_thread(server.terminate)
            assert graceful, server.log()[-3000:]
            acked = [0]  # r0's ack was read above
            try:
                while True:
                    frame = await socket.recv()
                    if frame["op"] == "ack":
                        acked.append(int(frame["ref"][1:]))
            except ConnectionClosed:
                pass
            assert socket.ws.close_code == 1001
            # Everything acknowledged is there, in order; the acks came in send order.
            assert acked == sorted(acked)
        async with running_server(tmp_path, database_url, free_port) as again:
            alice_again = await login(again.base_url, "alice")
            try:
                history = await alice_again.history(direct["id"], limit=100)
                stored = {m["content"] for m in history["messages"]}
                assert {f"last words {i}" for i in acked} <= stored
            finally:
                await alice_again.aclose()


@contextlib.asynccontextmanager
async def alice_in_a_direct_conversation(
    base_url: str,
) -> AsyncIterator[tuple[ParleyClient, RawSocket, dict[str, Any]]]:
    """Alice (SDK client), her identified raw socket, and her direct conversation with Bob."""
    alice = await new_user(base_url, "alice")
    bob = await new_user(base_url, "bob")
    socket = await RawSocket.open(base_url)
    try:
        direct = await alice.create_direct(bob.user_id)
        await socket.identify(await alice.access_token())
        yield alice, socket, direct
    finally:
        await socket.close()
        await alice.aclose()
        await bob.aclose()


async def _send_all(socket: RawSocket, frames: list[dict[str, Any]]) -> None:
    for frame in frames:
        await socket.ws.send(json.dumps(frame))


async def _until_first_ack(socket: RawSocket) -> None:
    while (await socket.recv())["op"] != "ack":
        pass
