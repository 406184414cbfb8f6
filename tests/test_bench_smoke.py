"""The benchmark harness still works: the floor server and the load generator's virtual
users speak to each other (20 messages to a room of three). No timing is asserted —
benchmarks are not tests (``make bench`` measures)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

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
