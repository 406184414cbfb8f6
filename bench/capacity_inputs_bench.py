"""The inputs of the capacity model (docs/scaling.md) that benchmarks.md does not give:
what one message costs PostgreSQL and Redis, measured on servers of this run's own so that
their CPU can be read from /proc without the other users of the machine's shared servers.

- PostgreSQL: a private primary with a streaming replica (``tests/support/pg_replication.py``);
  Parley's group-commit send path (the services, no sockets) sends into a group; measured:
  messages/s, the primary's CPU per message (every postgres process of that cluster),
  WAL bytes per message (what each replica must replay and the network must carry) and the
  replica's CPU per message (replay).
- Redis: a private redis-server; a node's bus publishes envelopes of a real message's size
  while 1 or 4 other nodes subscribe; measured: Redis CPU per published envelope.

    python bench/capacity_inputs_bench.py [--messages 3000] [--json out.json]

Numbers from one run on a 2-core machine shared with other work; CPU per message is the
figure to use (throughput here is bounded by the load generator in the same process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import bench_settings  # noqa: E402
from tests.support.free_ports import free_port  # noqa: E402
from tests.support.pg_replication import ReplicatedPostgres  # noqa: E402
from tests.support.redis_topologies import data_node  # noqa: E402

from parley.bus.base import Envelope, conversation_topic  # noqa: E402
from parley.bus.redis import redis_bus  # noqa: E402
from parley.container import build_container  # noqa: E402
from parley.store import migrate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def cluster_pids(data_dir: Path) -> list[int]:
    """The postmaster of ``data_dir`` and its children (backends, WAL sender/receiver,
    startup/replay, checkpointer...)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


async def postgres_costs(messages: int, senders: int) -> dict[str, Any]:
    pair = await asyncio.to_thread(ReplicatedPostgres(durable=True).start)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = bench_settings(
                Path(tmp) / "data",
                pair.primary_url,
                message_rate_per_second=1e9,
                message_burst=10**9,
                conversation_message_rate_per_second=1e9,
                conversation_message_burst=10**9,
                database_pool_size=20,
            )
            container = build_container(settings)
            try:
                await migrate.upgrade(container.db)
                owner = await container.accounts.register("owner", "bench passphrase 1")
                users = [
                    await container.accounts.register(f"user{i}", "bench passphrase 1")
                    for i in range(senders)
                ]
                group = await container.conversations.create_group(
                    owner.id, "bench", [u.id for u in users]
                )
                per_sender = messages // senders
                text = "a realistic chat message of about eighty characters, with words to index"
                await asyncio.to_thread(pair.wait_caught_up)
                primary_pids = cluster_pids(pair.directory / "primary")
                replica_pids = cluster_pids(pair.directory / "replica")
                lsn_before = pair.sql(pair.primary_port, "SELECT pg_current_wal_lsn()")
                primary_cpu, replica_cpu = cpu_seconds(primary_pids), cpu_seconds(replica_pids)

                async def sender(user_id: str) -> None:
                    for n in range(per_sender):
                        await container.messages.send(user_id, group["id"], f"{text} {n}")

                started = time.perf_counter()
                await asyncio.gather(*(sender(u.id) for u in users))
                elapsed = time.perf_counter() - started
                await asyncio.to_thread(pair.wait_caught_up)
                sent = per_sender * senders
                primary_used = cpu_seconds(cluster_pids(pair.directory / "primary")) - primary_cpu
                replica_used = cpu_seconds(cluster_pids(pair.directory / "replica")) - replica_cpu
                wal = int(
                    pair.sql(
                        pair.primary_port,
                        f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn_before}')",
                    )
                )
            finally:
                await container.close()
    finally:
        await asyncio.to_thread(pair.stop)
    return {
        "messages": sent,
        "messages_per_second": round(sent / elapsed, 1),
        "primary_cpu_us_per_message": round(primary_used / sent * 1e6, 1),
        "replica_cpu_us_per_message": round(replica_used / sent * 1e6, 1),
        "wal_bytes_per_message": round(wal / sent),
    }


async def redis_costs(envelopes: int, subscribers: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="parley-redis-bench-"))
    server = await asyncio.to_thread(data_node(directory, free_port()).start)
    url = f"redis://127.0.0.1:{server.port}/0"
    prefix = f"bench-{secrets.token_hex(3)}"
    publisher = redis_bus(url, prefix=prefix, node_id="publisher")
    others = [redis_bus(url, prefix=prefix, node_id=f"node{i}") for i in range(subscribers)]
    received = 0
    done = asyncio.Event()

    async def count(_: Envelope) -> None:
        nonlocal received
        received += 1
        if received >= envelopes * subscribers:
            done.set()

    async def ignore(_: Envelope) -> None:
        pass

    try:
        await publisher.start(ignore)
        for bus in others:
            await bus.start(count)
            await bus.subscribe(conversation_topic("c"))
        frame = json.dumps({"op": "event", "type": "message.created", "data": {"text": "x" * 400}})
        assert server.process is not None
        before = cpu_seconds([server.process.pid])
        started = time.perf_counter()
        for n in range(envelopes):
            await publisher.publish(
                Envelope(id=str(n), type="message.created", frame=frame, conversation_id="c")
            )
            if n % 256 == 255:
                await publisher.flush()
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        used = cpu_seconds([server.process.pid]) - before
    finally:
        for bus in (publisher, *others):
            await bus.close()
            await bus.aclose_clients()
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "subscribing_nodes": subscribers,
        "envelopes": envelopes,
        "envelopes_per_second": round(envelopes / elapsed, 1),
        "redis_cpu_us_per_envelope": round(used / envelopes * 1e6, 1),
    }


async def rate_limit_costs(hits: int) -> dict[str, Any]:
    """Redis CPU per token-bucket check (one Lua call), as every frame and send makes."""
    from parley.redis_clients import redis_client
    from parley.security.ratelimit import MemoryRateLimiter, Rate
    from parley.security.ratelimit_redis import RedisRateLimiter

    directory = Path(tempfile.mkdtemp(prefix="parley-redis-bench-"))
    server = await asyncio.to_thread(data_node(directory, free_port()).start)
    client = redis_client(f"redis://127.0.0.1:{server.port}/0")
    limiter = RedisRateLimiter(client, prefix="rl:", fallback=MemoryRateLimiter())
    rate = Rate(per_second=1e6, burst=10**9)
    try:
        await limiter.hit("warm", rate)
        assert server.process is not None
        before = cpu_seconds([server.process.pid])
        started = time.perf_counter()
        for start in range(0, hits, 100):  # 100 at a time, as concurrent sessions would
            await asyncio.gather(*(limiter.hit(f"user:{n % 1000}", rate) for n in range(start, start + 100)))
        elapsed = time.perf_counter() - started
        used = cpu_seconds([server.process.pid]) - before
    finally:
        await client.aclose()
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "hits": hits,
        "hits_per_second": round(hits / elapsed, 1),
        "redis_cpu_us_per_hit": round(used / hits * 1e6, 1),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {
        "benchmark": "capacity_inputs",
        "postgres": await postgres_costs(args.messages, args.senders),
        "redis": [await redis_costs(args.messages * 4, n) for n in (1, 4)],
        "rate_limits": await rate_limit_costs(args.messages * 4),
    }
    pg = result["postgres"]
    print("\n## Capacity inputs\n")
    print("| PostgreSQL (private primary + streaming replica) | value |\n|---|---|")
    for key, value in pg.items():
        print(f"| {key} | {value} |")
    print("\n| Redis: subscribing nodes | envelopes/s | Redis CPU µs per envelope |\n|---|---|---|")
    for row in result["redis"]:
        print(
            f"| {row['subscribing_nodes']} | {row['envelopes_per_second']} | "
            f"{row['redis_cpu_us_per_envelope']} |"
        )
    limits = result["rate_limits"]
    print(
        f"\nRate-limit check (one Lua call): {limits['redis_cpu_us_per_hit']} µs of Redis CPU, "
        f"{limits['hits_per_second']} checks/s from one client process"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
