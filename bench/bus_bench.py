"""What an envelope costs between two nodes on the Redis bus: CPU seconds of this process
(one publishing bus and one receiving bus, as two workers would be) per envelope, for
bursts of envelopes into one conversation — a group commit's messages — and for envelopes
each into a conversation of its own (direct messages).

CPU time of this process, not wall time: on a shared machine it does not move with what the
other processes leave it (Redis's own CPU is not counted).

    python bench/bus_bench.py [--envelopes 20000] [--burst 50] [--json PATH]

Run it against another checkout's ``src`` with ``PYTHONPATH=<checkout>/src`` to compare.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_multinode import REDIS_URL  # noqa: E402
from gateway_output import log, write_result  # noqa: E402

from parley.bus import Envelope, conversation_topic  # noqa: E402
from parley.bus.redis import RedisBus, redis_bus  # noqa: E402

FRAME = '{"op":"event","type":"message.created","data":{"message":{"content":"' + "x" * 100 + '"}}}'


async def measure(envelopes: int, burst: int, conversations: int) -> dict[str, float]:
    """``envelopes`` published in bursts of ``burst``, round-robin over ``conversations``
    conversations (one: every burst into the same one)."""
    prefix = f"parley-bus-bench-{secrets.token_hex(4)}"
    received = 0
    done = asyncio.Event()

    async def count(envelope: Envelope) -> None:
        nonlocal received
        received += 1
        if received >= envelopes:
            done.set()

    async def ignore(envelope: Envelope) -> None:
        pass

    receiver: RedisBus = redis_bus(REDIS_URL, prefix=prefix, node_id="receiver")
    publisher: RedisBus = redis_bus(REDIS_URL, prefix=prefix, node_id="publisher")
    await receiver.start(count)
    await publisher.start(ignore)
    try:
        for c in range(conversations):
            await receiver.subscribe(conversation_topic(f"c{c}"))
        started, cpu = time.monotonic(), time.process_time()
        for number in range(envelopes):
            conversation = f"c{number % conversations}"
            await publisher.publish(Envelope(id=f"e{number}", type="message.created", frame=FRAME,
                                             conversation_id=conversation))
            if number % burst == burst - 1:
                await publisher.flush()  # a commit's burst is out before the next one
        await asyncio.wait_for(done.wait(), 120)
        cpu_seconds, seconds = time.process_time() - cpu, time.monotonic() - started
    finally:
        for bus in (publisher, receiver):
            await bus.close()
            await bus.aclose_clients()
    return {"envelopes": envelopes, "burst": burst, "conversations": conversations,
            "cpu_us_per_envelope": round(1e6 * cpu_seconds / envelopes, 1),
            "wall_seconds": round(seconds, 2)}


async def run(envelopes: int, burst: int) -> dict[str, object]:
    shapes = {"one conversation (a group)": 1, "a conversation each (direct messages)": burst}
    results = {}
    for name, conversations in shapes.items():
        results[name] = await measure(envelopes, burst, conversations)
        log(f"bus, bursts of {burst}, {name}: {results[name]['cpu_us_per_envelope']} µs CPU per envelope")
    return {"benchmark": "bus", "redis": REDIS_URL, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envelopes", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    write_result(asyncio.run(run(args.envelopes, args.burst)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
