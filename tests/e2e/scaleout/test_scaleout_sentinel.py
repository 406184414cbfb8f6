"""Two nodes on Redis Sentinel (``PARLEY_REDIS_URL=redis+sentinel://…``): a primary, a
replica and three sentinels of the test's own. The primary is killed under load; the
sentinels promote the replica, every node finds it through them by itself, and every
acknowledged message reaches every member exactly once (the sessions resume by seq over
the gap, 4011)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.redis_topologies import SentinelGroup
from tests.support.scaleout_helpers import running_cluster
from tests.support.scaleout_load import (
    READY,
    acknowledged,
    all_nodes,
    each_got_every_acknowledged_message_once,
    group_under_load,
    redis_topology,
)


async def test_a_sentinel_failover_under_load_loses_no_acknowledged_message(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    with redis_topology(SentinelGroup(tmp_path / "sentinel")) as group_of_redis:
        async with (
            running_cluster(tmp_path, empty_postgres_url, redis_deployment=group_of_redis) as cluster,
            group_under_load(cluster) as load,
        ):
            senders = load.senders
            old_primary = group_of_redis.primary_port()
            killed_at = time.monotonic()
            await asyncio.to_thread(group_of_redis.kill_primary)
            during = len(senders.acked)
            await acknowledged(senders, 40)  # committed and acknowledged meanwhile
            # The sentinels promote the replica; the nodes find it through them.
            await all_nodes(cluster, READY)
            recovered = time.monotonic() - killed_at
            assert group_of_redis.primary_port() != old_primary
            for index in (0, 1):
                assert await cluster.metric(index, "parley_bus_reconnects_total") >= 1
            await acknowledged(senders, 60)
            await senders.stop()
            assert senders.failed == {}, senders.failed

            await each_got_every_acknowledged_message_once(load, told_to_resume=True)
            print(
                f"\nSentinel failover: {len(senders.acked)} sends acknowledged "
                f"({len(senders.acked) - during} from the kill on), none failed, none "
                f"lost; both nodes ready on the new primary {recovered:.1f}s after the kill"
            )
