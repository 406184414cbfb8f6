"""Two ``parley serve`` nodes on PostgreSQL + Redis behind a real nginx (round-robin, no
stickiness): people whose sessions landed on different nodes chat in a direct conversation
and a group, and typing, presence and receipts cross nodes too.

Everything is on loopback: a private redis-server, the shared PostgreSQL (a database of
this run's own), nginx from Debian running ``deploy/nginx/parley.conf``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from parley.client import ParleyClient
from tests.support.gateway_helpers import EventLog, new_user
from tests.support.scaleout_helpers import Cluster, eventually, open_located, open_on, running_cluster

WAIT = 10.0


def statuses(log: EventLog, user_id: str) -> list[str]:
    return [e.data["status"] for e in log.of("presence.updated") if e.data["user_id"] == user_id]


def texts(log: EventLog, conversation_id: str) -> list[str]:
    return [
        e.data["message"]["content"]
        for e in log.of("message.created")
        if e.conversation_id == conversation_id and e.data["message"]["kind"] == "text"
    ]


async def test_people_on_different_nodes_chat(tmp_path: Path, empty_postgres_url: str) -> None:
    async with running_cluster(tmp_path, empty_postgres_url) as cluster:
        await chat_across_nodes(cluster)


async def chat_across_nodes(cluster: Cluster) -> None:
    base = cluster.base_url
    names = ("alice", "bob", "carol", "dave", "erin")
    people: dict[str, ParleyClient] = {name: await new_user(base, name) for name in names}
    logs: list[EventLog] = []
    try:
        alice, bob, carol, dave, erin = (people[name] for name in names)
        dm = await alice.create_direct(bob.user_id)
        group = await alice.create_group(
            "Ops", [bob.user_id, carol.user_id, dave.user_id, erin.user_id]
        )

        # alice on node 0, bob on node 1, carol and dave wherever nginx puts them.
        alice_log = await open_on(cluster, alice, 0, auto_delivered=False)
        bob_log = await open_on(cluster, bob, 1, auto_delivered=False)
        logs += [alice_log, bob_log]
        others = [await open_located(cluster, person) for person in (carol, dave)]
        logs += [located.log for located in others]
        assert sorted(await cluster.sessions()) != [0, 4]  # round-robin spread them

        # Presence crosses nodes: bob (node 1) came after alice (node 0), and each sees
        # the other — alice by an event, bob in his ready.
        await alice_log.wait_for(lambda _: statuses(alice_log, bob.user_id) == ["online"])
        ready_presences = bob_log.session.ready_data["presences"]  # type: ignore[index]
        assert {p["user_id"]: p["status"] for p in ready_presences}[alice.user_id] == "online"

        # A direct conversation across nodes, both ways.
        await alice_log.session.send_message(dm["id"], "hi bob, from node 0")
        await bob_log.wait_for(lambda _: texts(bob_log, dm["id"]) == ["hi bob, from node 0"])
        await bob_log.session.send_message(dm["id"], "hi alice, from node 1")
        await alice_log.wait_for(
            lambda _: texts(alice_log, dm["id"]) == ["hi bob, from node 0", "hi alice, from node 1"]
        )

        # A group: everyone sends once; everyone sees all four, in one order for all.
        sessions = [alice_log, bob_log, *(located.log for located in others)]
        for number, log in enumerate(sessions):
            await log.session.send_message(group["id"], f"group message {number}")
        expected = {f"group message {number}" for number in range(4)}
        orders = []
        for log in sessions:
            await log.wait_for(lambda _, log=log: set(texts(log, group["id"])) == expected)
            orders.append(texts(log, group["id"]))
        assert all(order == orders[0] for order in orders), orders

        # Typing: alice types on node 0, bob sees it on node 1 (and the stop).
        await alice_log.session.start_typing(group["id"])
        await bob_log.wait_for(
            lambda _: any(e.data["user_id"] == alice.user_id for e in bob_log.of("typing.started"))
        )
        await alice_log.session.stop_typing(group["id"])
        await bob_log.wait_type("typing.stopped")

        # Receipts: bob reads on node 1; alice learns it on node 0.
        last_seq = max(
            e.data["seq"] for e in bob_log.of("message.created") if e.conversation_id == group["id"]
        )
        await bob_log.session.mark_read(group["id"], last_seq)
        await alice_log.wait_for(
            lambda _: any(
                e.data["user_id"] == bob.user_id and e.data["seq"] == last_seq
                for e in alice_log.of("receipt.read")
            )
        )

        # Presence end to end: erin comes online on the node bob is *not* on... then
        # leaves; alice and bob, one per node, both see online, then offline after the
        # grace period (the node that swept it announced it to everyone).
        erin_log = await open_on(cluster, erin, 0)
        for log in (alice_log, bob_log):
            await log.wait_for(lambda _, log=log: statuses(log, erin.user_id) == ["online"])
        await erin_log.close()
        for log in (alice_log, bob_log):
            await log.wait_for(
                lambda _, log=log: statuses(log, erin.user_id) == ["online", "offline"]
            )
        offline = [e for e in bob_log.of("presence.updated") if e.data["user_id"] == erin.user_id]
        assert offline[-1].data["last_seen_at"] is not None

        # Nothing went wrong on the way: no publish failed, both nodes stayed subscribed.
        for index in (0, 1):
            assert await cluster.metric(index, "parley_bus_publish_failures_total") == 0
            assert await cluster.metric(index, "parley_bus_connected") == 1
            ready = await cluster.ready(index)
            assert ready["status"] == "ok", ready
            assert set(ready["checks"]) >= {"database", "bus", "redis"}
        # The job queue's figures are scraped from Redis Streams with the rest.
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(cluster.nodes[0].base_url + "/metrics")).text
        for name in ("parley_jobs_queued", "parley_jobs_pending", "parley_jobs_dead_letters"):
            assert f"\n{name} " in text, name
        # Every publish that went through Redis was timed.
        await eventually(
            lambda: cluster.metric(0, "parley_bus_publish_duration_seconds_count"),
            lambda count: count > 0,
            timeout=WAIT,
            what="publish latency observed",
        )
    finally:
        for log in logs:
            await log.close()
        for person in people.values():
            await person.aclose()
