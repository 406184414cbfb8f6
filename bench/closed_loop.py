"""A second, independent closed-loop measurement of Parley, to check the fan-out probe by.

Independent of the probe (``gateway_fanout.py`` on ``loadgen.py``) in each part that could
be wrong there:

- **clients:** the ``websockets`` library's own asyncio client (``websockets.asyncio.client``),
  one task per sender and one reader per connection — not the load generator's sans-I/O
  virtual users and their hand-written frame reader;
- **pacing:** each of N senders keeps k messages in flight (a semaphore released by each
  ``ack`` or ``error``), for a fixed warm-up (extended, if need be, until N × k acks have
  come back) and then a fixed window;
- **accounting:** accepted messages counted twice: the ``ack`` frames the clients receive
  in the window, and the rows the server committed in it (``max(rowid)`` of ``messages``
  read from the server's SQLite file at the window's two ends, read-only). Deliveries are
  the ``message.created`` frames received in the window;
- **server:** a fresh ``parley serve`` of its own, pinned like the probe's (server on the
  first core, this load on the others).

Two workloads: a group of 100 (every member connected, N of them sending) and direct
messages (N pairs, one side sending). It measures Parley only: the ratio to the floor is
the probe's business; this says whether the probe's absolute rate is right.

    python bench/closed_loop.py [--senders 100] [--inflight 2] [--warmup 2] [--seconds 4]
                                [--workloads group100,dm] [--idle N] [--json PATH]

Not a test: nothing here asserts a time. The server is stopped when it is done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_output import log  # noqa: E402
from gateway_targets import ParleyTarget  # noqa: E402
from measured import Counts, require_measured  # noqa: E402
from procs import (  # noqa: E402
    Server,
    cpu_share,
    parley_server,
    pin_self,
    plan_pinning,
    raise_open_files_limit,
    sample,
    thread_cpu_seconds,
)
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

CREATED = '{"op":"event","type":"message.created"'
ACK = '{"op":"ack"'
ERROR = '{"op":"error"'
MAX_EXTRA_WARMUP = 20.0  # seconds the window may wait past the warm-up for a first round


@dataclass
class Tally:
    """What every connection of one workload saw; only the window's events count."""

    counting: bool = False
    sent: int = 0
    acks_ever: int = 0  # warm-up included
    acks: int = 0
    errors: int = 0
    deliveries: int = 0
    error_samples: list[str] | None = None


@dataclass
class Outcome:
    workload: str
    senders: int
    inflight: int
    fanout: int  # deliveries per message: members connected
    window_s: float
    acked_per_s: float  # acks received by the clients in the window
    committed_per_s: float  # rows the server wrote in the window
    deliveries_per_s: float
    server_cpu: float
    load_cpu: float
    # Server CPU per message committed in the window, split: the event loop (the main
    # thread) and every other thread (SQLite's writer and readers); in microseconds.
    loop_us_per_message: float
    other_threads_us_per_message: float
    errors: int
    error_samples: list[str]


class Member:
    """One connection: a reader that counts frames and frees a send slot on each answer."""

    def __init__(self, socket: ClientConnection, tally: Tally, inflight: int) -> None:
        self.socket = socket
        self.tally = tally
        self.slots = asyncio.Semaphore(inflight)
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        tally = self.tally
        async for frame in self.socket:
            text = frame if isinstance(frame, str) else frame.decode()
            if text.startswith(CREATED):
                if tally.counting:
                    tally.deliveries += 1
            elif text.startswith(ACK):
                tally.acks_ever += 1
                if tally.counting:
                    tally.acks += 1
                self.slots.release()
            elif text.startswith(ERROR):
                tally.errors += 1
                if tally.error_samples is not None and len(tally.error_samples) < 3:
                    tally.error_samples.append(text[:300])
                if '"ref"' in text:
                    self.slots.release()

    async def send_forever(self, conversation: str, tag: str) -> None:
        for number in range(1 << 62):
            await self.slots.acquire()
            if self.tally.counting:
                self.tally.sent += 1
            await self.socket.send(json.dumps({
                "op": "call", "ref": str(number), "method": "message.send",
                "params": {"conversation_id": conversation, "content": f"closed loop {number} " + "x" * 80,
                           "client_msg_id": f"{tag}.{number}"},
            }))


async def open_member(url: str, token: str, tally: Tally, inflight: int) -> Member:
    socket = await connect(url, compression=None, max_size=None, open_timeout=30)
    await socket.send(json.dumps({"op": "identify", "token": token}))
    while True:  # events may only follow ``ready``
        first = await asyncio.wait_for(socket.recv(), 30)
        if isinstance(first, str) and first.startswith('{"op":"ready"'):
            return Member(socket, tally, inflight)


def committed(database: Path) -> int:
    """Rows in ``messages`` so far: rowids only grow, and nothing is deleted while this runs."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        return int(db.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0])


async def measure(
    server: Server, target: ParleyTarget, workload: str, users: list[int], senders: list[tuple[int, str]],
    inflight: int, warmup: float, seconds: float,
) -> Outcome:
    tally = Tally(error_samples=[])
    members: dict[int, Member] = {}
    limit = asyncio.Semaphore(32)

    async def join(key: int) -> None:
        async with limit:
            members[key] = await open_member(server.ws_url, target.tokens[key], tally, inflight)

    await asyncio.gather(*(join(key) for key in users))
    database = server.workdir / "data" / "parley.db"
    loops = [asyncio.create_task(members[key].send_forever(conversation, f"cl{key}.{workload}"))
             for key, conversation in senders]
    try:
        await asyncio.sleep(warmup)
        # ... and at least a first round acknowledged (a loaded machine may need longer).
        first_round = len(senders) * inflight
        deadline = time.monotonic() + MAX_EXTRA_WARMUP
        while tally.acks_ever < first_round and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        rows_before, server_before, load_before = committed(database), server.sample(), sample_self()
        loop_before = thread_cpu_seconds(server.pid)
        tally.counting = True
        opened = time.monotonic()
        await asyncio.sleep(seconds)
        tally.counting = False
        window = time.monotonic() - opened
        rows_after, server_after, load_after = committed(database), server.sample(), sample_self()
        loop_after = thread_cpu_seconds(server.pid)
    finally:
        # A sender or reader that died (a closed socket, an error) is reported, not hidden.
        died = [task.exception() for task in [*loops, *(m.reader for m in members.values())]
                if task.done() and not task.cancelled() and task.exception() is not None]
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for member in members.values():
            await member.socket.close()
            member.reader.cancel()
    if died:
        tally.errors += len(died)
        (tally.error_samples or []).insert(0, f"{len(died)} tasks died, first: {died[0]!r}")
    fanout = len(users) if workload != "dm" else 2
    messages = max(1, rows_after - rows_before)
    require_measured(Counts(
        label=f"closed loop {workload} ({'; '.join(tally.error_samples or []) or 'no error'})",
        window_seconds=window, sent=tally.sent, accepted=tally.acks,
        deliveries=tally.deliveries, latency_samples=tally.deliveries, errors=tally.errors,
    ))
    return Outcome(
        workload=workload, senders=len(senders), inflight=inflight, fanout=fanout, window_s=round(window, 2),
        acked_per_s=round(tally.acks / window, 1),
        committed_per_s=round((rows_after - rows_before) / window, 1),
        deliveries_per_s=round(tally.deliveries / window, 1),
        server_cpu=round(cpu_share(server_before, server_after), 3),
        load_cpu=round(cpu_share(load_before, load_after), 3),
        loop_us_per_message=round((loop_after - loop_before) / messages * 1e6, 1),
        other_threads_us_per_message=round(
            (server_after.cpu_seconds - server_before.cpu_seconds - (loop_after - loop_before)) / messages * 1e6, 1
        ),
        errors=tally.errors, error_samples=tally.error_samples or [],
    )


def sample_self() -> Any:
    import os

    return sample(os.getpid())


async def run(
    workloads: list[str], senders: int, inflight: int, warmup: float, seconds: float, idle: int = 0
) -> dict[str, Any]:
    """``idle``: that many more users connected and silent for the whole run, as the fan-out
    probe's server holds a thousand (to tell what they cost per message)."""
    pinning = plan_pinning()
    pin_self(pinning.load)
    raise_open_files_limit()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="parley-closed-loop-") as tmp:
        server = parley_server(Path(tmp) / "parley", pinning.server).start()
        try:
            target = ParleyTarget(server, "cl")
            active = max(100, 2 * senders)
            await target.setup_users(active + idle)
            quiet = Tally()
            limit = asyncio.Semaphore(32)

            async def idle_member(key: int) -> Member:
                async with limit:
                    return await open_member(server.ws_url, target.tokens[key], quiet, 1)

            idlers = list(await asyncio.gather(*(idle_member(k) for k in range(active, active + idle))))
            for workload in workloads:
                if workload == "group100":
                    members = list(range(100))
                    conversation = await target.group(members, "closed loop 100")
                    chosen = [(members[i * 100 // min(senders, 100)], conversation)
                              for i in range(min(senders, 100))]
                    users = members
                elif workload == "dm":
                    pairs = [(2 * i, 2 * i + 1) for i in range(senders)]
                    conversations = await target.direct(pairs)
                    chosen = [(a, c) for (a, _), c in zip(pairs, conversations, strict=True)]
                    users = [key for pair in pairs for key in pair]
                else:
                    raise ValueError(f"unknown workload {workload!r} (group100, dm)")
                await asyncio.sleep(1.0)  # conversation.created events and the last backlog settle
                outcome = await measure(server, target, workload, users, chosen, inflight, warmup, seconds)
                log(f"closed loop {workload}: {outcome.senders} senders × {inflight} in flight: "
                    f"{outcome.acked_per_s:.0f} msgs/s acked, {outcome.committed_per_s:.0f} committed, "
                    f"{outcome.deliveries_per_s:.0f} deliveries/s; server CPU {outcome.server_cpu:.2f} "
                    f"(per message: loop {outcome.loop_us_per_message:.0f} us, other threads "
                    f"{outcome.other_threads_us_per_message:.0f} us), "
                    f"load CPU {outcome.load_cpu:.2f}" + (f", {outcome.errors} errors" if outcome.errors else ""))
                outcomes.append(outcome)
            for member in idlers:
                await member.socket.close()
                member.reader.cancel()
        finally:
            server.stop()
    return {"pinning": pinning.note, "warmup_s": warmup, "idle": idle, "outcomes": [asdict(o) for o in outcomes]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="group100,dm")
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--idle", type=int, default=0, help="more users connected and silent throughout")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.workloads.split(","), args.senders, args.inflight, args.warmup, args.seconds, args.idle)
    )
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
