"""Two nodes on Redis Cluster (``PARLEY_REDIS_URL=redis+cluster://…``): three primaries,
each with a replica, started by the test. Messages cross nodes over sharded pub/sub; then a
primary is killed under load, the cluster promotes its replica, the nodes rebuild their
subscriptions from the new slot map by themselves, and every acknowledged message reaches
every member exactly once (sessions resume by seq over the gap, 4011)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from parley.wire.codes import CloseCode
from tests.support.redis_topologies import RedisClusterGroup
from tests.support.scaleout_helpers import created_ids, eventually, running_cluster
from tests.support.scaleout_load import (
    READY,
    acknowledged,
    all_nodes,
    each_got_every_acknowledged_message_once,
    group_under_load,
    redis_topology,
)


async def test_a_cluster_primary_failover_under_load_loses_no_acknowledged_message(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    with redis_topology(RedisClusterGroup(tmp_path / "cluster", replicas=1)) as redis_cluster:
        async with (
            running_cluster(tmp_path, empty_postgres_url, redis_deployment=redis_cluster) as cluster,
            group_under_load(cluster) as load,
        ):
            senders = load.senders
            # Across nodes, before any failure: every member sees every message live.
            before = set(senders.acked.values())
            for log in load.logs:
                await log.wait_for(lambda _, log=log: before <= set(created_ids(log, load.conversation_id)))

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
            await all_nodes(cluster, READY)
            recovered = time.monotonic() - killed_at
            await acknowledged(senders, 60)
            await senders.stop()
            assert senders.failed == {}, senders.failed

            await each_got_every_acknowledged_message_once(load, told_to_resume=False)
            resynced = sum(CloseCode.RESYNC in log.session.close_codes for log in load.logs)
            print(
                f"\nCluster failover: {len(senders.acked)} sends acknowledged "
                f"({len(senders.acked) - during} from the kill on), none failed, none "
                f"lost; both nodes ready {recovered:.1f}s after the kill; "
                f"{resynced} of {len(load.logs)} sessions told to resume (4011)"
            )
