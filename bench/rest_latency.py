"""Latency of a message sent over REST to a group whose members are all connected: the
figure of issue #23's "p50 for a 50-member group at 20 msg/s, sender on REST", against the
floor (``floor_server.py``) measured the same way in the same run.

One fresh ``parley serve`` and one floor, each pinned like the probe's (server on the first
core, this load on the others); on each, a group of ``--members`` users, every one connected
over a WebSocket; one of them sends ``--rate`` messages a second for ``--seconds`` with
``POST /api/v1/conversations/{id}/messages`` (httpx, one keep-alive connection, open loop: a
send does not wait for the one before). For each message it records:

- **delivery latency**: from just before the POST to each member's receipt of its
  ``message.created`` (every member, the sender's other socket included): the figure the
  issue names;
- **REST latency**: from just before the POST to its ``201``.

Both clocks are this process's ``time.monotonic``, so both include this load generator's
own time: building the request in httpx and reading 50 frames in Python. The floor's
figures are that share plus the least a server can do (no authentication, no database).
Runs alternate floor, Parley, floor, Parley...; the server not measured is stopped
(SIGSTOP) meanwhile, and the first ``--warmup`` seconds of each run are not counted. Logs p50 / p99 of each, the server's CPU share per run, and at the end the
delivery p50 of each as min / median / max over the runs with Parley / floor and Parley −
floor (what Parley itself adds); ``--json`` keeps them all.

    python bench/rest_latency.py [--members 50] [--rate 20] [--seconds 10] [--warmup 2]
                                 [--runs 3] [--json PATH]

Not a test: nothing here asserts a time. The servers are stopped when it is done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from gateway_output import log  # noqa: E402
from gateway_targets import FloorTarget, ParleyTarget, Target  # noqa: E402
from measured import Counts, ratio, require_measured, spread  # noqa: E402
from procs import (  # noqa: E402
    Server,
    cpu_share,
    floor_server,
    parley_server,
    pin_self,
    plan_pinning,
    raise_open_files_limit,
)
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

CREATED = '{"op":"event","type":"message.created"'
MARK = "rest latency "


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def receive(socket: ClientConnection, sent_at: dict[int, float], seen: list[float]) -> None:
    """Record, for each counted message, the seconds from its POST to this member's event."""
    async for frame in socket:
        text = frame if isinstance(frame, str) else frame.decode()
        if not text.startswith(CREATED):
            continue
        arrived = time.monotonic()
        start = text.find(MARK)
        if start < 0:
            continue
        number = int(text[start + len(MARK): text.index(" ", start + len(MARK))])
        posted = sent_at.get(number)
        if posted is not None:
            seen.append(arrived - posted)


async def open_socket(url: str, token: str) -> ClientConnection:
    socket = await connect(url, compression=None, max_size=None, open_timeout=30)
    await socket.send(json.dumps({"op": "identify", "token": token}))
    while True:  # events may only follow ``ready``
        first = await asyncio.wait_for(socket.recv(), 30)
        if isinstance(first, str) and first.startswith('{"op":"ready"'):
            return socket


async def one_run(
    target: Target, conversation: str, members: int, rate: float, seconds: float, warmup: float, run: int,
) -> dict[str, Any]:
    server = target.server
    sent_at: dict[int, float] = {}
    deliveries: list[float] = []
    answers: list[float] = []
    sockets = [await open_socket(server.ws_url, target.tokens[k]) for k in range(members)]
    readers = [asyncio.create_task(receive(s, sent_at, deliveries)) for s in sockets]
    errors: list[str] = []
    headers = {"authorization": f"Bearer {target.tokens[0]}"}
    total = int((warmup + seconds) * rate)
    counted_from = int(warmup * rate)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:

            async def post(number: int) -> None:
                started = time.monotonic()
                if number >= counted_from:
                    sent_at[number] = started
                response = await http.post(
                    f"/api/v1/conversations/{conversation}/messages", headers=headers,
                    json={"content": f"{MARK}{number} " + "x" * 80, "client_msg_id": f"rl{run}.{number}"},
                )
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                elif number >= counted_from:
                    answers.append(time.monotonic() - started)

            posts = []
            began = time.monotonic()
            before = server.sample()
            for number in range(total):
                # Open loop: the n-th send starts at n / rate, whatever the earlier ones do.
                await asyncio.sleep(max(0.0, began + number / rate - time.monotonic()))
                if number == counted_from:
                    before = server.sample()
                posts.append(asyncio.create_task(post(number)))
            await asyncio.gather(*posts)
            expected = (total - counted_from) * members
            deadline = time.monotonic() + 10
            while len(deliveries) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            after = server.sample()
    finally:
        for reader in readers:
            reader.cancel()
        for socket in sockets:
            await socket.close()
    require_measured(Counts(
        label=f"rest latency {target.name} run {run} ({'; '.join(errors[:2]) or 'no error'})", window_seconds=seconds,
        sent=total - counted_from, accepted=len(answers), deliveries=len(deliveries),
        latency_samples=len(deliveries), errors=len(errors),
    ))
    outcome: dict[str, Any] = {
        "server": target.name, "run": run, "members": members, "rate": rate, "seconds": seconds,
        "messages": len(answers), "deliveries": len(deliveries), "expected_deliveries": expected,
        "errors": len(errors),
        "delivery_ms": {name: round(percentile(deliveries, q) * 1000, 2)
                        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        "rest_ms": {name: round(percentile(answers, q) * 1000, 2)
                    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        "server_cpu": round(cpu_share(before, after), 3),
    }
    log(f"rest latency {target.name} run {run}: {members} members at {rate:g} msg/s: delivery p50 "
        f"{outcome['delivery_ms']['p50']} ms, p99 {outcome['delivery_ms']['p99']} ms; REST p50 "
        f"{outcome['rest_ms']['p50']} ms; {len(deliveries)}/{expected} deliveries; "
        f"server CPU {outcome['server_cpu']:.2f}" + (f"; {len(errors)} errors" if errors else ""))
    return outcome


async def run(members: int, rate: float, seconds: float, warmup: float, runs: int) -> dict[str, Any]:
    pinning = plan_pinning()
    pin_self(pinning.load)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="parley-rest-latency-") as tmp:
        servers: list[Server] = []
        try:
            servers.append(floor_server(Path(tmp) / "floor", pinning.server).start())
            servers.append(parley_server(Path(tmp) / "parley", pinning.server).start())
            targets: list[Target] = [FloorTarget(servers[0], "rl"), ParleyTarget(servers[1], "rl")]
            conversations = []
            for target in targets:
                await target.setup_users(members)
                conversations.append(await target.group(list(range(members)), "rest latency"))
            await asyncio.sleep(1.0)  # conversation.created settles
            outcomes = []
            for r in range(1, runs + 1):
                for target, conversation in zip(targets, conversations, strict=True):
                    with paused([server for server in servers if server is not target.server]):
                        outcomes.append(await one_run(target, conversation, members, rate, seconds, warmup, r))
        finally:
            for server in servers:
                server.stop()
    return {"pinning": pinning.note, "outcomes": outcomes, "summary": summarize(outcomes)}


@contextmanager
def paused(servers: list[Server]) -> Iterator[None]:
    """Stop these servers' processes (SIGSTOP) for the block: an idle server still wakes for
    its timers (Parley about 1 % of a core), on the core the measured one runs on."""
    for server in servers:
        os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for server in servers:
            os.kill(server.pid, signal.SIGCONT)


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Delivery p50 of each server over the runs, and Parley against the floor run by run."""
    p50 = {name: [o["delivery_ms"]["p50"] for o in outcomes if o["server"] == name] for name in ("floor", "parley")}
    pairs = list(zip(p50["floor"], p50["parley"], strict=True))
    summary = {
        "floor_p50_ms": spread(p50["floor"]).as_dict(),
        "parley_p50_ms": spread(p50["parley"]).as_dict(),
        "parley_over_floor": spread([ratio(parley, floor, "rest latency p50") for floor, parley in pairs]).as_dict(),
        "parley_minus_floor_ms": spread([parley - floor for floor, parley in pairs]).as_dict(),
    }
    log("rest latency, delivery p50 (min / median / max over the runs): floor "
        f"{spread(p50['floor']).text()} ms, Parley {spread(p50['parley']).text()} ms; Parley / floor "
        f"{spread([ratio(b, a, 'rest latency p50') for a, b in pairs]).text()}; Parley − floor "
        f"{spread([b - a for a, b in pairs]).text()} ms")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.members, args.rate, args.seconds, args.warmup, args.runs))
    if args.json:  # the figures are in the log lines above; the file has them all
        args.json.write_text(json.dumps(result, indent=2))
    return 0

if __name__ == "__main__":
    sys.exit(main())
