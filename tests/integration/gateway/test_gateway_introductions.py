"""Live profile and presence for people who just met (issue #20, defects 2 and 3): a new
direct conversation or group tells each side at once whether the other is online, never a
blocked user; a display-name change reaches everyone who knows the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gateway_helpers import EventLog, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")


def seen_online(log: EventLog, user_id: str) -> bool:
    return any(
        e.data["user_id"] == user_id and e.data["status"] == "online"
        for e in log.of("presence.updated")
    )


async def test_people_who_just_met_learn_each_others_presence(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        base = server.base_url
        alice, bob, carol, dave = [await new_user(base, n) for n in ("alice", "bob", "carol", "dave")]
        await carol.block(dave.user_id)
        logs = {name: await open_log(c, auto_delivered=False) for name, c in
                (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave))}
        try:
            # Strangers until now: nobody has heard of anyone else's presence.
            for name, log in logs.items():
                me = {"alice": alice, "bob": bob, "carol": carol, "dave": dave}[name].user_id
                assert {e.data["user_id"] for e in log.of("presence.updated")} <= {me}
            await alice.create_direct(bob.user_id)
            await logs["alice"].wait_for(lambda _: seen_online(logs["alice"], bob.user_id))
            await logs["bob"].wait_for(lambda _: seen_online(logs["bob"], alice.user_id))

            group = await alice.create_group("Crew", [carol.user_id])
            await logs["carol"].wait_for(lambda _: seen_online(logs["carol"], alice.user_id))
            await alice.add_members(group["id"], [dave.user_id])
            await logs["dave"].wait_for(lambda _: seen_online(logs["dave"], alice.user_id))
            await logs["alice"].wait_for(lambda _: seen_online(logs["alice"], dave.user_id))
            # A marker after everything: carol and dave blocked each other's presence.
            await alice.create_direct(carol.user_id)
            await logs["carol"].wait_for(lambda _: len(logs["carol"].of("conversation.created")) >= 2)
            await logs["alice"].wait_for(lambda _: seen_online(logs["alice"], carol.user_id))
            assert not seen_online(logs["carol"], dave.user_id)
            assert not seen_online(logs["dave"], carol.user_id)
        finally:
            for log in logs.values():
                await log.close()
            for c in (alice, bob, carol, dave):
                await c.aclose()


async def test_a_display_name_change_reaches_everyone_who_knows_the_user(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        base = server.base_url
        alice, bob, carol, erin = [await new_user(base, n) for n in ("alice", "bob", "carol", "erin")]
        await alice.create_direct(bob.user_id)
        await alice.request_contact(carol.user_id)
        await carol.accept_contact(alice.user_id)
        logs = {name: await open_log(c, auto_delivered=False) for name, c in
                (("alice", alice), ("bob", bob), ("carol", carol), ("erin", erin))}
        try:
            await alice.update_me(display_name="Alice Cooper")
            for name in ("alice", "bob", "carol"):
                [event] = await logs[name].wait_type("user.updated")
                assert event.data["user"]["id"] == alice.user_id
                assert event.data["user"]["display_name"] == "Alice Cooper"
                assert "is_admin" not in event.data["user"]
            # erin shares nothing with alice: a marker event shows erin got nothing.
            await erin.create_direct(bob.user_id)
            await logs["erin"].wait_type("conversation.created")
            assert logs["erin"].of("user.updated") == []
        finally:
            for log in logs.values():
                await log.close()
            for c in (alice, bob, carol, erin):
                await c.aclose()
