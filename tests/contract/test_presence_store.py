"""The PresenceStore contract (``parley.presence.base``), run against the in-process
store and Redis. Two stores with different node ids share one set of tables, the way two
nodes share one Redis: what one node writes, the other sees and can expire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as redis

from parley.presence.base import Change, Entry, PresenceStatus, PresenceStore
from parley.presence.memory import MemoryPresenceStore
from parley.presence.redis import RedisPresenceStore
from tests.support.redis_fixtures import PRESENCE_SHARDS

ONLINE, AWAY, OFFLINE = PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.OFFLINE
TTL = 30.0
SHORT = 0.2  # an entry that runs out during the test

NodeFactory = Callable[[str], PresenceStore]


@pytest.fixture(params=["memory", "redis"])
def nodes(request: pytest.FixtureRequest) -> NodeFactory:
    """Makes one store per node id, all sharing the same tables."""
    if request.param == "memory":
        first = MemoryPresenceStore("first")
        return lambda node_id: MemoryPresenceStore(node_id, shared=first)
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda node_id: RedisPresenceStore(
        client, prefix=prefix + "p", node_id=node_id, shards=PRESENCE_SHARDS
    )


async def wait_past(seconds: float) -> None:
    """Sleeping is the point here: entries run out in real time (Redis's clock)."""
    await asyncio.sleep(seconds + 0.05)


async def test_combined_status_across_two_nodes(nodes: NodeFactory) -> None:
    a, b = nodes("a"), nodes("b")
    assert await a.put({"u": Entry(1, 0, TTL)}) == [Change("u", ONLINE)]
    assert await b.put({"u": Entry(0, 1, TTL)}) == []  # one online session is enough
    # a's last session closes: its entry stays for the grace, without sessions.
    assert await a.put({"u": Entry(0, 0, TTL)}) == [Change("u", AWAY)]
    assert await b.put({"u": Entry(1, 0, TTL)}) == [Change("u", ONLINE)]
    assert await b.statuses(["u", "nobody"]) == {"u": ONLINE}
    assert await b.put({"u": Entry(0, 0, SHORT)}) == []  # both in their grace: no change
    await a.put({"u": Entry(0, 0, SHORT)})
    await wait_past(SHORT)
    assert await b.expire() == [Change("u", OFFLINE)]
    assert await a.expire() == []  # reported once
    assert await a.statuses(["u"]) == {}


async def test_a_dead_nodes_users_go_offline_by_themselves(nodes: NodeFactory) -> None:
    dead, alive = nodes("dead"), nodes("alive")
    await dead.put({"u1": Entry(1, 0, SHORT), "u2": Entry(2, 0, SHORT)})
    await alive.put({"u2": Entry(1, 0, TTL)})  # u2 reconnected to the other node
    assert await alive.statuses(["u1", "u2"]) == {"u1": ONLINE, "u2": ONLINE}
    await wait_past(SHORT)  # the dead node never writes again
    assert await alive.expire() == [Change("u1", OFFLINE)]
    assert await alive.statuses(["u1", "u2"]) == {"u2": ONLINE}


async def test_a_reconnect_within_the_grace_changes_nothing(nodes: NodeFactory) -> None:
    a, b = nodes("a"), nodes("b")
    await a.put({"u": Entry(1, 0, TTL)})
    assert await a.put({"u": Entry(0, 0, SHORT)}) == []
    assert await b.put({"u": Entry(1, 0, TTL)}) == []
    await wait_past(SHORT)
    assert await b.expire() == []
    assert await b.statuses(["u"]) == {"u": ONLINE}


async def test_no_grace_means_offline_at_once(nodes: NodeFactory) -> None:
    a = nodes("a")
    await a.put({"u": Entry(0, 1, TTL)})
    assert await a.statuses(["u"]) == {"u": AWAY}
    assert await a.put({"u": Entry(0, 0, 0)}) == [Change("u", OFFLINE)]
    assert await a.put({"never": Entry(0, 0, 0)}) == []  # never announced: nothing to say


async def test_concurrent_sweepers_report_each_change_once(nodes: NodeFactory) -> None:
    writer = nodes("writer")
    users = [f"user{number}" for number in range(300)]
    await writer.put({user: Entry(1, 0, SHORT) for user in users})
    await wait_past(SHORT)
    sweepers = [nodes(f"sweeper{number}") for number in range(3)]
    results = await asyncio.gather(*(sweeper.expire() for sweeper in sweepers))
    reported = [change.user_id for changes in results for change in changes]
    assert sorted(reported) == sorted(users)
    assert all(change.status is OFFLINE for changes in results for change in changes)
