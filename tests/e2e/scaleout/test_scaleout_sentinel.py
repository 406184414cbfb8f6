"""Two nodes on Redis Sentinel (``PARLEY_REDIS_URL=redis+sentinel://…``): a primary, a
replica and three sentinels of the test's own. The primary is killed under load; the
sentinels promote the replica, every node finds it through them by itself, and every
acknowledged message reaches every member exactly once (the sessions resume by seq over
the gap, 4011)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from parley.wire.codes import CloseCode
from tests.e2e.scaleout.test_scaleout_redis import acknowledged, all_nodes
from tests.support.gateway_helpers import EventLog, new_user
from tests.support.redis_topologies import SentinelGroup
from tests.support.scaleout_helpers import SteadySenders, created_ids, open_located, running_cluster

MEMBERS = 4
INTERVAL = 0.05


async def test_a_sentinel_failover_under_load_loses_no_acknowledged_message(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    group_of_redis = SentinelGroup(tmp_path / "sentinel")
    try:
        async with running_cluster(
            tmp_path, empty_postgres_url, redis_deployment=group_of_redis
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

                old_primary = group_of_redis.primary_port()
                killed_at = time.monotonic()
                await asyncio.to_thread(group_of_redis.kill_primary)
                during = len(senders.acked)
                await acknowledged(senders, 40)  # committed and acknowledged meanwhile
                # The sentinels promote the replica; the nodes find it through them.
                await all_nodes(cluster, (200, "ok", "ok"))
                recovered = time.monotonic() - killed_at
                assert group_of_redis.primary_port() != old_primary
                for index in (0, 1):
                    assert await cluster.metric(index, "parley_bus_reconnects_total") >= 1
                await acknowledged(senders, 60)
                await senders.stop()
                assert senders.failed == {}, senders.failed

                acked = set(senders.acked.values())
                for log in logs:
                    assert CloseCode.RESYNC in log.session.close_codes, log.session.close_codes
                    await log.wait_for(
                        lambda _, log=log: acked <= set(created_ids(log, group["id"])),
                        timeout=20,
                    )
                    repeated = {
                        m: n for m, n in Counter(created_ids(log, group["id"])).items() if n > 1
                    }
                    assert repeated == {}, repeated
                print(
                    f"\nSentinel failover: {len(senders.acked)} sends acknowledged "
                    f"({len(senders.acked) - during} from the kill on), none failed, none "
                    f"lost; both nodes ready on the new primary {recovered:.1f}s after the kill"
                )
            finally:
                for log in logs:
                    await log.close()
                for person in people:
                    await person.aclose()
    except BaseException:
        print(group_of_redis.logs())
        raise
    finally:
        group_of_redis.kill()
