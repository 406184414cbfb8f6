"""A scale-out simulation for the capacity model (docs/scaling.md): 4 Parley nodes on one
PostgreSQL database and a 3-primary Redis Cluster (sharded pub/sub), groups whose members
are spread over all 4 nodes, an open-loop send rate over WebSockets. Measured per step:
CPU of every Parley node and every Redis shard per message and per delivery, how evenly
the shards share the bus, and the delivery latency from commit to socket
(``parley_gateway_delivery_seconds``, summed over the nodes).

    python bench/cluster_simulation_bench.py [--groups 16] [--members 16] [--rates 50,150]

Every process shares this machine's cores, so absolute rates mean little; CPU per message
and per delivery, and the split between shards, are what extrapolate.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity_inputs_bench import cpu_seconds  # noqa: E402
from databases import make_database  # noqa: E402
from tests.support.free_ports import free_port  # noqa: E402
from tests.support.gateway_helpers import RawSocket, new_user, server_env  # noqa: E402
from tests.support.redis_topologies import RedisClusterGroup, command, data_node  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

NODES = 4
STEP_SECONDS = 10.0


def histogram(text: str, name: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="')[1].split('"')[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def command_stats(ports: list[int]) -> dict[str, tuple[int, int]]:
    """``INFO commandstats`` summed over the shards: command -> (calls, microseconds)."""
    totals: dict[str, tuple[int, int]] = {}
    for port in ports:
        text = command(port, "INFO", "commandstats").decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("cmdstat_"):
                name, _, rest = line.partition(":")
                fields = dict(part.split("=") for part in rest.split(",") if "=" in part)
                calls, usec = totals.get(name[8:], (0, 0))
                totals[name[8:]] = (calls + int(fields["calls"]), usec + int(fields["usec"]))
    return totals


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` (Prometheus-style, coarse)."""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound
    return None


async def scrape(http: httpx.AsyncClient, nodes: list[ServerProcess]) -> list[str]:
    return [(await http.get(n.base_url + "/metrics")).text for n in nodes]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--rates", default="50,150", help="messages/s, comma-separated")
    parser.add_argument(
        "--topology", choices=["cluster", "single"], default="cluster",
        help="a 3-primary cluster (sharded pub/sub), or one redis-server for comparison",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="parley-cluster-sim-"))
    if args.topology == "cluster":
        redis_cluster: Any = await asyncio.to_thread(RedisClusterGroup(work / "redis").start)
        redis_processes = redis_cluster.nodes
    else:
        redis_cluster = await asyncio.to_thread(data_node(work / "redis", free_port()).start)
        redis_processes = [redis_cluster]
    redis_url = (
        redis_cluster.url if args.topology == "cluster"
        else f"redis://127.0.0.1:{redis_cluster.port}/0"
    )
    url, drop = await make_database("postgres", work, f"parley_cluster_sim_{os.getpid()}")
    nodes: list[ServerProcess] = []
    sockets: list[RawSocket] = []
    results: list[dict[str, Any]] = []
    try:
        for index in range(NODES):
            directory = work / f"node{index}"
            directory.mkdir()
            env = server_env(
                directory, url, redis_url=redis_url, redis_key_prefix="sim",
                access_log="false",
            )
            nodes.append(await asyncio.to_thread(ServerProcess(free_port(), env, directory).start))
        base = nodes[0].base_url
        users = [await new_user(base, f"user{n}") for n in range(args.groups * args.members)]
        groups = []
        for g in range(args.groups):
            members = users[g * args.members : (g + 1) * args.members]
            created = await members[0].create_group(f"g{g}", [m.user_id for m in members[1:]])
            groups.append((created["id"], members))
        # Member i of every group on node i % 4: each group's channel is wanted by all 4.
        by_user: dict[str, RawSocket] = {}
        for number, user in enumerate(users):
            sock = await RawSocket.open(nodes[number % NODES].base_url, max_queue=None)
            await sock.identify(await user.access_token())
            by_user[user.user_id] = sock
            sockets.append(sock)

        async def drain(sock: RawSocket) -> None:
            try:
                async for _ in sock.ws:
                    pass
            except Exception:  # noqa: BLE001 - closed at the end
                pass

        drains = [asyncio.create_task(drain(s)) for s in sockets]
        senders = itertools.cycle([(gid, m) for gid, members in groups for m in members])
        node_pids = [n.process.pid for n in nodes if n.process is not None]
        shard_pids = [n.process.pid for n in redis_processes if n.process is not None]
        async with httpx.AsyncClient(timeout=10) as http:
            # Idle first: what the processes use with no traffic (sweeps, heartbeats,
            # presence, the cluster's own gossip) is subtracted from the loaded steps.
            idle_nodes = sum(cpu_seconds([p]) for p in node_pids)
            idle_shards = sum(cpu_seconds([p]) for p in shard_pids)
            await asyncio.sleep(STEP_SECONDS)
            idle_node_rate = (sum(cpu_seconds([p]) for p in node_pids) - idle_nodes) / STEP_SECONDS
            idle_shard_rate = (sum(cpu_seconds([p]) for p in shard_pids) - idle_shards) / STEP_SECONDS
            print(json.dumps({"idle_node_cores": round(idle_node_rate, 3),
                              "idle_redis_cores": round(idle_shard_rate, 3)}))
            for rate in rates:
                before = await scrape(http, nodes)
                stats_before = command_stats([p.port for p in redis_processes])
                node_cpu = [cpu_seconds([p]) for p in node_pids]
                shard_cpu = [cpu_seconds([p]) for p in shard_pids]
                step_started = started = time.perf_counter()
                sent = 0
                while (elapsed := time.perf_counter() - started) < STEP_SECONDS:
                    target = int(elapsed * rate)
                    while sent < target:
                        gid, member = next(senders)
                        await by_user[member.user_id].send(
                            {"op": "call", "ref": f"r{sent}", "method": "message.send",
                             "params": {"conversation_id": gid, "content": f"sim {sent}"}}
                        )
                        sent += 1
                    await asyncio.sleep(0.002)
                await asyncio.sleep(1.0)  # the last deliveries
                after = await scrape(http, nodes)
                stats_after = command_stats([p.port for p in redis_processes])
                per_message = {
                    name: (
                        round((calls - stats_before.get(name, (0, 0))[0]) / sent, 2),
                        round((usec - stats_before.get(name, (0, 0))[1]) / sent, 1),
                    )
                    for name, (calls, usec) in stats_after.items()
                }
                seconds = time.perf_counter() - step_started
                node_used = [cpu_seconds([p]) - c for p, c in zip(node_pids, node_cpu, strict=True)]
                shard_used = [cpu_seconds([p]) - c for p, c in zip(shard_pids, shard_cpu, strict=True)]
                node_work = max(sum(node_used) - idle_node_rate * seconds, 0.0)
                shard_work = max(sum(shard_used) - idle_shard_rate * seconds, 0.0)
                deliveries = sum(
                    counter(a, "parley_gateway_frames_pushed_total") - counter(b, "parley_gateway_frames_pushed_total")
                    for a, b in zip(after, before, strict=True)
                )
                merged: dict[float, float] = {}
                for a, b in zip(after, before, strict=True):
                    ha, hb = histogram(a, "parley_gateway_delivery_seconds"), histogram(b, "parley_gateway_delivery_seconds")
                    for bound, value in ha.items():
                        merged[bound] = merged.get(bound, 0.0) + value - hb.get(bound, 0.0)
                row = {
                    "rate": rate,
                    "messages": sent,
                    "deliveries": int(deliveries),
                    "node_cpu_us_per_message": round(node_work / sent * 1e6),
                    "node_cpu_us_per_delivery": round(node_work / max(deliveries, 1) * 1e6, 1),
                    "node_cpu_share": [round(u / sum(node_used), 2) for u in node_used],
                    "redis_cpu_us_per_message": round(shard_work / sent * 1e6, 1),
                    "redis_shard_share": [round(u / max(sum(shard_used), 1e-9), 2) for u in shard_used],
                    # command -> (calls per message, Redis µs per message), busiest first
                    "redis_commands_per_message": dict(
                        sorted(per_message.items(), key=lambda item: -item[1][1])[:8]
                    ),
                    "delivery_p50_p95_p99_ms_bucket": [
                        None if (v := quantile(merged, q)) is None else round(v * 1000, 1)
                        for q in (0.5, 0.95, 0.99)
                    ],
                }
                results.append(row)
                print(json.dumps(row))
        for task in drains:
            task.cancel()
    finally:
        for sock in sockets:
            try:
                await asyncio.wait_for(sock.close(), 2)
            except Exception:  # noqa: BLE001
                pass
        for node in nodes:
            node.kill()
        redis_cluster.kill()
        if drop is not None:
            await drop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n## 4 nodes on Redis ({args.topology})\n")
    print("| msgs/s | deliveries | node CPU µs/msg | node CPU µs/delivery | Redis CPU µs/msg | Redis shard shares | delivery p50/p95/p99 ms (bucket bounds) |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['rate']:.0f} | {row['deliveries']} | {row['node_cpu_us_per_message']} | "
            f"{row['node_cpu_us_per_delivery']} | {row['redis_cpu_us_per_message']} | "
            f"{row['redis_shard_share']} | {row['delivery_p50_p95_p99_ms_bucket']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
