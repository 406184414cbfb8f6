"""Two nodes on Redis Cluster (``PARLEY_REDIS_URL=redis+cluster://…``): three primaries,
each with a replica, started by the test. Messages cross nodes over sharded pub/sub; then a
primary is killed under load, the cluster promotes its replica, the nodes rebuild their
subscriptions from the new slot map by themselves, and every acknowledged message reaches
every member exactly once (sessions resume by seq over the gap, 4011)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from parley.wire.codes import CloseCode
from tests.e2e.scaleout.test_scaleout_redis import acknowledged, all_nodes
from tests.support.gateway_helpers import EventLog, new_user
from tests.support.redis_topologies import RedisClusterGroup
from tests.support.scaleout_helpers import SteadySenders, created_ids, eventually, open_located, running_cluster

MEMBERS = 4
INTERVAL = 0.05


async def test_a_cluster_primary_failover_under_load_loses_no_acknowledged_message(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    redis_cluster = RedisClusterGroup(tmp_path / "cluster", replicas=1)
    try:
        async with running_cluster(
            tmp_path, empty_postgres_url, redis_deployment=redis_cluster
        ) as cluster:
            base = cluster.base_url
            people = [await new_user(base, f"member{number}") for number in range(MEMBERS)]
            logs: list[EventLog] = []
            try:
                group = await people[0].create_group("Load", [p.user_id for p in people[1:]])
                nodes = []
                for person in people:
                    located = await open_located(cluster, person, auto_delivered=False)
                    logs.append(located.log)
                    nodes.append(located.node)
                assert set(nodes) == {0, 1}, nodes
                await all_nodes(cluster, (200, "ok", "ok"))

                senders = SteadySenders(logs, group["id"], interval=INTERVAL).start()
                await acknowledged(senders, 40)
                # Across nodes, before any failure: every member sees every message live.
                before = set(senders.acked.values())
                for log in logs:
                    await log.wait_for(lambda _, log=log: before <= set(created_ids(log, group["id"])))

                primaries = redis_cluster.primaries()
                killed_at = time.monotonic()
                victim = await asyncio.to_thread(redis_cluster.kill_primary)
                during = len(senders.acked)
                await acknowledged(senders, 40)  # committed and acknowledged meanwhile
                await eventually(
                    lambda: asyncio.to_thread(redis_cluster.primaries),
                    lambda now: len(now) == len(primaries) and victim.port not in now,
                    timeout=40,  # failure detection (node timeout 1 s) and an election, under load
                    what="the replica promoted",
                )
                await all_nodes(cluster, (200, "ok", "ok"))
                recovered = time.monotonic() - killed_at
                await acknowledged(senders, 60)
                await senders.stop()
                assert senders.failed == {}, senders.failed

                acked = set(senders.acked.values())
                for log in logs:
                    await log.wait_for(
                        lambda _, log=log: acked <= set(created_ids(log, group["id"])),
                        timeout=20,
                    )
                    repeated = {
                        m: n for m, n in Counter(created_ids(log, group["id"])).items() if n > 1
                    }
                    assert repeated == {}, repeated
                resynced = sum(CloseCode.RESYNC in log.session.close_codes for log in logs)
                print(
                    f"\nCluster failover: {len(senders.acked)} sends acknowledged "
                    f"({len(senders.acked) - during} from the kill on), none failed, none "
                    f"lost; both nodes ready {recovered:.1f}s after the kill; "
                    f"{resynced} of {len(logs)} sessions told to resume (4011)"
                )
            finally:
                for log in logs:
                    await log.close()
                for person in people:
                    await person.aclose()
    except BaseException:
        print(redis_cluster.logs())
        raise
    finally:
        redis_cluster.kill()
