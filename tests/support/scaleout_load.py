"""A group sending steadily while Redis fails (test_scaleout_redis, _sentinel, _cluster):
what every node must show afterwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from parley.client import ParleyClient
from parley.wire.codes import CloseCode
from tests.support.gateway_helpers import EventLog, new_user
from tests.support.scaleout_helpers import (
    Cluster,
    RedisDeployment,
    SteadySenders,
    created_ids,
    eventually,
    open_located,
)

READY = (200, "ok", "ok")  # a node's readiness: HTTP status, overall status, the bus's


def bus_state(ready: dict[str, Any]) -> tuple[int, str, str]:
    return ready["http_status"], ready["status"], ready["checks"]["bus"]["status"]


async def all_nodes(cluster: Cluster, wanted: tuple[int, str, str]) -> None:
    for index in range(len(cluster.nodes)):
        await eventually(
            lambda index=index: cluster.ready(index),
            lambda ready: bus_state(ready) == wanted,
            timeout=10,
            what=f"node {index} readiness {wanted}",
        )


async def acknowledged(senders: SteadySenders, count: int) -> None:
    target = len(senders.acked) + count
    await eventually(
        lambda: asyncio.sleep(0, len(senders.acked)),
        lambda n: n >= target,
        timeout=15,
        what=f"{count} more sends acknowledged",
    )


@dataclass
class GroupUnderLoad:
    """The members of one group, a realtime session each (on both nodes), all sending."""

    people: list[ParleyClient]
    logs: list[EventLog]
    conversation_id: str
    senders: SteadySenders


@contextlib.asynccontextmanager
async def group_under_load(
    cluster: Cluster, *, members: int = 4, interval: float = 0.05
) -> AsyncIterator[GroupUnderLoad]:
    """``members`` users in one group, each with a session through nginx (both nodes take
    some), the nodes ready, and every session sending every ``interval`` seconds — 40
    sends acknowledged already. Sessions and clients are closed at the end."""
    people = [await new_user(cluster.base_url, f"member{number}") for number in range(members)]
    logs: list[EventLog] = []
    try:
        group = await people[0].create_group("Load", [p.user_id for p in people[1:]])
        nodes = []
        for person in people:
            located = await open_located(cluster, person, auto_delivered=False)
            logs.append(located.log)
            nodes.append(located.node)
        assert set(nodes) == {0, 1}, nodes
        await all_nodes(cluster, READY)

        senders = SteadySenders(logs, group["id"], interval=interval).start()
        await acknowledged(senders, 40)
        yield GroupUnderLoad(people, logs, group["id"], senders)
    finally:
        for log in logs:
            await log.close()
        for person in people:
            await person.aclose()


async def each_got_every_acknowledged_message_once(load: GroupUnderLoad, *, told_to_resume: bool) -> None:
    """Every acknowledged message is in every session exactly once, whether it came live or
    from the changes feed; ``told_to_resume``: each session was also closed 4011 (resync)."""
    acked = set(load.senders.acked.values())
    for log in load.logs:
        if told_to_resume:
            assert CloseCode.RESYNC in log.session.close_codes, log.session.close_codes
        await log.wait_for(
            lambda _, log=log: acked <= set(created_ids(log, load.conversation_id)), timeout=20
        )
        repeated = {m: n for m, n in Counter(created_ids(log, load.conversation_id)).items() if n > 1}
        assert repeated == {}, repeated


class LoggedRedisDeployment(RedisDeployment, Protocol):
    def logs(self) -> str: ...


Deployment = TypeVar("Deployment", bound=LoggedRedisDeployment)


@contextlib.contextmanager
def redis_topology(deployment: Deployment) -> Iterator[Deployment]:
    """A Sentinel group or a cluster (``tests/support/redis_topologies.py``) for one test: its logs
    printed when the test fails (pytest shows them), every process killed at the end."""
    try:
        yield deployment
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.kill()
