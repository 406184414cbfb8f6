"""``kill -9`` one of two nodes while people on both send at a steady rate.

The dead node's clients reconnect through nginx to the other node and resume; every
acknowledged message reaches every member exactly once; a user of the dead node who does
not come back goes offline by themselves within the presence TTL (nobody is left to say
so but the other node's sweep of expired entries).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from parley.client import ParleyClient
from tests.support.gateway_helpers import EventLog, RawSocket, new_user
from tests.support.scaleout_helpers import (
    FAST_PRESENCE,
    Cluster,
    SteadySenders,
    created_ids,
    eventually,
    open_located,
    running_cluster,
)

SENDERS = 6
INTERVAL = 0.05  # per sender: 120 messages a second in all
VICTIM, SURVIVOR = 1, 0


async def test_a_killed_node_loses_nothing_acknowledged(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    async with running_cluster(tmp_path, empty_postgres_url) as cluster:
        base = cluster.base_url
        people = [await new_user(base, f"member{number}") for number in range(SENDERS)]
        ghost = await new_user(base, "ghost")  # on the victim, and never coming back
        logs: list[EventLog] = []
        raw: RawSocket | None = None
        offline: asyncio.Task[float] | None = None
        try:
            group = await people[0].create_group(
                "Load", [p.user_id for p in people[1:]] + [ghost.user_id]
            )
            nodes = []
            for person in people:
                located = await open_located(cluster, person, auto_delivered=False)
                logs.append(located.log)
                nodes.append(located.node)
            on_victim = [log for log, node in zip(logs, nodes, strict=True) if node == VICTIM]
            assert on_victim and len(on_victim) < SENDERS, nodes  # both nodes have people

            raw = await ghost_on_victim(cluster, ghost)
            watcher = logs[nodes.index(SURVIVOR)]
            await watcher.wait_for(lambda _: "online" in statuses(watcher, ghost.user_id))

            senders = SteadySenders(logs, group["id"], interval=INTERVAL).start()
            await eventually(
                lambda: asyncio.sleep(0, len(senders.acked)), lambda n: n >= 60,
                timeout=10, what="traffic before the kill",
            )
            killed_at = time.monotonic()
            cluster.nodes[VICTIM].kill()  # SIGKILL: no 1001, no flush, no goodbye
            ttl = float(FAST_PRESENCE["presence_ttl_seconds"])  # type: ignore[arg-type]

            async def ghost_offline() -> float:
                """Seconds from the kill until people on the survivor see the ghost offline."""
                await watcher.wait_for(
                    lambda _: statuses(watcher, ghost.user_id)[-1:] == ["offline"],
                    timeout=ttl + 10,
                )
                return time.monotonic() - killed_at

            offline = asyncio.create_task(ghost_offline())

            # Its sessions come back through nginx, to the survivor.
            await eventually(
                lambda: cluster.metric(SURVIVOR, "parley_gateway_sessions"),
                lambda count: count == SENDERS,
                timeout=15, what="every SDK session reconnected to the survivor",
            )
            reconnected_after = time.monotonic() - killed_at
            for log in on_victim:
                assert log.session.connections >= 2
            await eventually(
                lambda: asyncio.sleep(0, len(senders.acked)), lambda n: n >= 300,
                timeout=20, what="traffic after the kill",
            )
            await senders.stop()
            assert senders.failed == {}, senders.failed  # retried under the same id

            # Every acknowledged message reached every member exactly once.
            acked = set(senders.acked.values())
            for log in logs:
                await log.wait_for(
                    lambda _, log=log: acked <= set(created_ids(log, group["id"])), timeout=20
                )
                counts = Counter(created_ids(log, group["id"]))
                repeated = {message: n for message, n in counts.items() if n > 1}
                assert repeated == {}, repeated
            # And the database has exactly those, once each (a resend created nothing).
            stored, _ = await people[0].changes_since(group["id"], 0)
            texts = [m["content"] for m in stored if m["kind"] == "text"]
            assert sorted(texts) == sorted(f"steady {cid}" for cid in senders.acked)

            # The ghost did not come back: offline within the TTL (plus one sweep), seen
            # by people on the surviving node, while those who came back never flickered.
            offline_after = await offline
            # TTL since the dead node's last heartbeat, plus a sweep and the announcement.
            assert offline_after <= ttl + 1.5, offline_after
            print(
                f"\nkill -9: {len(on_victim)} of {SENDERS} sessions moved in "
                f"{reconnected_after:.2f}s; {len(senders.acked)} sends acknowledged, "
                f"slowest {max(senders.latencies):.2f}s; ghost offline after {offline_after:.2f}s"
            )
            for person in people:
                assert "offline" not in statuses(watcher, person.user_id), person.username
        finally:
            if offline is not None and not offline.done():
                offline.cancel()
            for log in logs:
                await log.close()
            if raw is not None:
                raw.ws.transport.abort()  # its node is dead: no close handshake to wait for
            for person in (*people, ghost):
                await person.aclose()


def statuses(log: EventLog, user_id: str) -> list[str]:
    return [e.data["status"] for e in log.of("presence.updated") if e.data["user_id"] == user_id]


async def ghost_on_victim(cluster: Cluster, ghost: ParleyClient) -> RawSocket:
    """A bare socket (it will not reconnect) that landed on the victim node."""
    token = await ghost.access_token()
    for _ in range(8):
        before = await cluster.sessions()
        raw = await RawSocket.open(cluster.base_url)
        await raw.identify(token)
        after = await eventually(
            cluster.sessions,
            lambda counts, before=before: sum(counts) > sum(before),
            timeout=5,
            what="counted",
        )
        if after[VICTIM] > before[VICTIM]:
            return raw
        await raw.close()
        await eventually(
            cluster.sessions, lambda counts, before=before: counts == before, timeout=5, what="gone"
        )
    raise AssertionError("the ghost never landed on the victim")

