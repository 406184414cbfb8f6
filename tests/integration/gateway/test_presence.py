"""Presence across two devices of one user: online → away (only when every device is away)
→ online → offline after the grace period with ``last_seen_at`` stored — pushed to people
sharing a conversation and to contacts, never to blocked users or strangers. Run with the
in-process presence store and with Redis's (several nodes: ``test_scaleout_chat.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from parley.clock import isoformat
from parley.store.db import Database
from parley.store.tables.accounts import users
from tests.support.gateway_helpers import EventLog, login, new_user, open_log, running_server
from tests.support.redis_fixtures import REDIS_URL

pytestmark = pytest.mark.usefixtures("backend")

GRACE = 0.5


@pytest.fixture(params=["memory", "redis"])
def presence_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    """Settings choosing the presence store (Redis: a key prefix of the test's own)."""
    if request.param == "memory":
        return {}
    prefix: str = request.getfixturevalue("redis_prefix")
    return {"redis_url": REDIS_URL, "redis_key_prefix": prefix.rstrip(":")}


def statuses(log: EventLog, user_id: str) -> list[str]:
    return [e.data["status"] for e in log.of("presence.updated") if e.data["user_id"] == user_id]


async def test_presence_online_away_offline_across_two_devices(
    tmp_path: Path, database_url: str, free_port: int, presence_settings: dict[str, object]
) -> None:
    async with running_server(
        tmp_path,
        database_url,
        free_port,
        presence_offline_grace_seconds=GRACE,
        presence_sweep_interval_seconds=0.1,
        **presence_settings,
    ) as server:
        base = server.base_url
        names = ("alice", "bob", "carol", "dave", "erin")
        clients = {name: await new_user(base, name) for name in names}
        alice, bob, carol, dave, erin = (clients[n] for n in names)
        phone = await login(base, "alice", device="phone")
        logs: dict[str, EventLog] = {}
        try:
            await alice.create_direct(bob.user_id)
            group = await bob.create_group("Trio", [alice.user_id, carol.user_id])
            await carol.block(alice.user_id)  # carol shares the group but must not see alice
            await alice.request_contact(dave.user_id)  # dave shares nothing but is a contact
            await dave.accept_contact(alice.user_id)
            for name in ("bob", "carol", "dave", "erin"):
                logs[name] = await open_log(clients[name], auto_delivered=False)

            laptop_log = await open_log(alice, auto_delivered=False)
            logs["laptop"] = laptop_log
            await logs["bob"].wait_for(lambda _: statuses(logs["bob"], alice.user_id) == ["online"])
            phone_log = await open_log(phone, auto_delivered=False)
            logs["phone"] = phone_log
            # A session opening now finds alice in ready — unless it is carol's.
            late = await open_log(await login(base, "bob"), auto_delivered=False)
            late_carol = await open_log(await login(base, "carol"), auto_delivered=False)
            try:
                seen = {p["user_id"]: p["status"] for p in late.session.ready_data["presences"]}  # type: ignore[index]
                assert seen.get(alice.user_id) == "online"
                hidden = late_carol.session.ready_data["presences"]  # type: ignore[index]
                assert alice.user_id not in {p["user_id"] for p in hidden}
            finally:
                for extra in (late, late_carol):
                    await extra.close()
                    await extra.session.client.aclose()

            await laptop_log.session.set_presence("away")  # the phone is still online
            dm_id = next(c["id"] for c in await bob.conversations() if c["type"] == "direct")
            await alice.send_message(dm_id, "barrier")  # bob gets it after any presence change
            await logs["bob"].wait_type("message.created")
            assert statuses(logs["bob"], alice.user_id) == ["online"]
            await phone_log.session.set_presence("away")  # now alice is away
            await logs["bob"].wait_for(
                lambda _: statuses(logs["bob"], alice.user_id)[-1:] == ["away"]
            )
            await phone_log.session.set_presence("online")
            await logs["bob"].wait_for(
                lambda _: statuses(logs["bob"], alice.user_id)[-1:] == ["online"]
            )
            await laptop_log.close()  # the phone is still connected: no change
            await phone_log.close()
            closed_at = time.monotonic()
            await logs["bob"].wait_for(
                lambda _: statuses(logs["bob"], alice.user_id)[-1:] == ["offline"]
            )
            assert time.monotonic() - closed_at >= GRACE * 0.8

            expected = ["online", "away", "online", "offline"]
            await logs["dave"].wait_for(lambda _: len(statuses(logs["dave"], alice.user_id)) >= 4)
            for name in ("bob", "dave"):
                assert statuses(logs[name], alice.user_id) == expected, name
            offline = [
                e for e in logs["bob"].of("presence.updated") if e.data["status"] == "offline"
            ]
            last_seen = offline[-1].data["last_seen_at"]
            assert last_seen is not None

            # Barriers: later events for carol and erin; presence would have come first.
            await bob.send_message(group["id"], "anyone?")
            await logs["carol"].wait_type("message.created")
            await bob.request_contact(erin.user_id)
            await logs["erin"].wait_type("contact.requested")
            assert statuses(logs["carol"], alice.user_id) == []
            assert statuses(logs["erin"], alice.user_id) == []
        finally:
            for log in logs.values():
                await log.close()
            for client in (*clients.values(), phone):
                await client.aclose()

        db = Database(database_url, pool_size=1)
        try:
            async with db.read() as conn:
                stored = (
                    await conn.execute(
                        select(users.c.last_seen_at).where(users.c.id == alice.user_id)
                    )
                ).scalar_one()
        finally:
            await db.dispose()
        assert stored is not None and isoformat(stored) == last_seen
