"""The benchmark harness still works: the floor server and the load generator's virtual
users speak to each other (20 messages to a room of three), and the database benchmarks
``make bench`` runs go through on a small SQLite database. No timing is asserted —
benchmarks are not tests (``make bench`` measures)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import REPO

BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

import history_bench  # noqa: E402
import ready_reads_bench  # noqa: E402
from loadgen import Worker  # noqa: E402
from procs import floor_server  # noqa: E402


@pytest.fixture
def floor(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = floor_server(tmp_path, None).start()
    try:
        yield server
    finally:
        server.kill()


async def test_floor_and_load_generator_exchange_messages(floor) -> None:  # type: ignore[no-untyped-def]
    import httpx

    async with httpx.AsyncClient(base_url=floor.base_url) as http:
        made = await http.post("/floor/rooms", json={"id": "ROOM", "member_ids": ["u0", "u1", "u2"]})
        assert made.status_code == 201
    worker = Worker(0, floor.ws_url, deflate=True)
    connected = await worker.cmd_connect([(0, "u0"), (1, "u1"), (2, "u2")], concurrency=0, timeout=10)
    assert connected["ok"] == 3, connected
    try:
        plan = {
            "senders": [(0, "ROOM")], "rate": 200.0, "duration": 0.1, "inflight_cap": 64,
            "start_at": time.monotonic(), "content_chars": 100, "settle": 5.0,
        }
        result = await worker.cmd_step(plan)
        sent = result["sent"]  # about 20: the pacing follows the clock, not a count
        assert sent > 0 and result["acks"] == sent and result["unacked"] == 0
        assert result["deliveries"] == 3 * sent  # every member, the sender included
        assert sum(result["latency"]) == 3 * sent and result["errors"] == 0
        probe = await worker.cmd_step(plan | {"rate": math.inf, "inflight_cap": 2, "start_at": time.monotonic()})
        assert probe["acks"] >= 1 and probe["deliveries"] == 3 * probe["acks"]
    finally:
        await worker.cmd_close()
        await asyncio.sleep(0)


async def test_the_floor_sends_over_rest_as_parley_does(floor) -> None:  # type: ignore[no-untyped-def]
    """``bench/rest_latency.py``'s baseline: a POST to the floor's message route reaches
    every member's socket as ``message.created`` and answers 201 with the message."""
    import json

    import httpx
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient(base_url=floor.base_url) as http:
        made = await http.post("/floor/rooms", json={"id": "REST", "member_ids": ["a0", "a1"]})
        assert made.status_code == 201
        async with connect(floor.ws_url) as socket:
            await socket.send(json.dumps({"op": "identify", "token": "a1"}))
            ready = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert ready["op"] == "ready"
            sent = await http.post(
                "/api/v1/conversations/REST/messages", headers={"authorization": "Bearer a0"},
                json={"content": "over rest", "client_msg_id": "r1"},
            )
            assert sent.status_code == 201
            assert sent.json()["message"]["sender_id"] == "a0"
            event = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert event["type"] == "message.created"
            assert event["data"]["message"]["content"] == "over rest"
        missing = await http.post("/api/v1/conversations/NOPE/messages", json={"content": "x"})
        assert missing.status_code == 404


def test_rest_latency_measures_the_floor_and_parley(tmp_path: Path) -> None:
    """``bench/rest_latency.py`` end to end, small: one run on each server, every delivery
    counted, the summary computed. A subprocess: the script pins the process it runs in."""
    import json
    import subprocess

    output = tmp_path / "rest.json"
    finished = subprocess.run(
        [sys.executable, str(BENCH / "rest_latency.py"), "--members", "3", "--rate", "20",
         "--seconds", "1", "--warmup", "0", "--runs", "1", "--json", str(output)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads(output.read_text())
    servers = [outcome["server"] for outcome in result["outcomes"]]
    assert servers == ["floor", "parley"]
    for outcome in result["outcomes"]:
        assert outcome["errors"] == 0
        assert outcome["deliveries"] == outcome["expected_deliveries"] == 3 * outcome["messages"] > 0
    summary = result["summary"]
    assert summary["parley_p50_ms"]["runs"] == summary["floor_p50_ms"]["runs"] == 1
    assert summary["parley_over_floor"]["median"] > 0


async def test_a_closed_loop_window_is_shared_with_a_worker_that_only_receives(floor) -> None:  # type: ignore[no-untyped-def]
    """Two workers (as two load processes would be) share when each one's first round came
    back: the one holding no sender opens its window at the same instant as the sender's,
    and counts the deliveries of that window."""
    import httpx

    async with httpx.AsyncClient(base_url=floor.base_url) as http:
        made = await http.post("/floor/rooms", json={"id": "PAIR", "member_ids": ["s0", "r1"]})
        assert made.status_code == 201
    rounds = [0, 0]  # what multiprocessing's shared Array is to the load processes
    sender = Worker(0, floor.ws_url, deflate=False, rounds=rounds)
    receiver = Worker(1, floor.ws_url, deflate=False, rounds=rounds)
    assert (await sender.cmd_connect([(0, "s0")], concurrency=0, timeout=10))["ok"] == 1
    assert (await receiver.cmd_connect([(1, "r1")], concurrency=0, timeout=10))["ok"] == 1
    try:
        start_at = time.monotonic() + 0.1
        plan = {
            "rate": math.inf, "duration": 0.2, "inflight_cap": 2, "start_at": start_at,
            "content_chars": 100, "settle": 5.0, "warmup": 0.05, "round_peers": [0],
        }
        mine, theirs = await asyncio.gather(
            sender.cmd_step(plan | {"senders": [(0, "PAIR")]}),
            receiver.cmd_step(plan | {"senders": []}),
        )
        assert (mine["window_start_ns"], mine["window_end_ns"]) == (theirs["window_start_ns"], theirs["window_end_ns"])
        assert mine["window_start_ns"] >= int(start_at * 1e9)  # after the warm-up, not from the first send
        assert mine["acks_in_window"] >= 1 and theirs["deliveries_in_window"] >= 1
        assert theirs["acks_in_window"] == 0 and mine["first_round_s"] > 0
    finally:
        await sender.cmd_close()
        await receiver.cmd_close()


async def test_the_database_benchmarks_run(tmp_path: Path) -> None:
    [history] = await history_bench.run(["sqlite"], [200], 2)
    assert history["messages"] == 200 and len(history["queries"]) == 8
    assert all(query["median_ms"] > 0 for query in history["queries"])
    ready = await ready_reads_bench.bench("sqlite", 10, 1, tmp_path)
    assert [step["cpu_ms"] > 0 for step in ready["steps"]] == [True, True]
