"""What ``ready`` reads, on both databases: unread counts and member counts read with the
conversations, the presence audience (people sharing a conversation and accepted contacts,
minus blocks either way, never the user), and a session that is revoked — or whose user was
deactivated a moment before the revocation — refused as revoked; and bursts of `ready` reads
and of identifies read together (fewer transactions than callers), each caller with its own
outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from parley.clock import utcnow
from parley.container import Container
from parley.errors import SessionRevoked
from parley.services.auth import Principal
from parley.services.open_sessions import IdentifyRead, open_sessions_then
from parley.services.realtime_reads import (
    ReadyReads,
    ReadyRequest,
    RealtimeReads,
    member_conversation_ids_of,
    ready_reads,
    ready_reads_of,
)
from parley.store.tables.accounts import users
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


class ReadTransactions:
    count = 0


def count_read_transactions(container: Container, monkeypatch: pytest.MonkeyPatch) -> ReadTransactions:
    """Counts ``Database.read_sync`` calls — each one read transaction — until undone."""
    seen = ReadTransactions()
    read_sync = container.db.read_sync

    async def counted(work: Any, *args: Any) -> Any:
        seen.count += 1
        return await read_sync(work, *args)

    monkeypatch.setattr(container.db, "read_sync", counted)
    return seen


async def befriend(client: httpx.AsyncClient, one: UserHandle, other: UserHandle) -> None:
    asked = await client.post("/api/v1/contacts", json={"user_id": other.id}, headers=one.headers)
    assert asked.status_code == 201, asked.text
    accepted = await client.post(f"/api/v1/contacts/{one.id}/accept", headers=other.headers)
    assert accepted.status_code == 200, accepted.text


async def test_ready_carries_unread_and_member_counts_and_the_presence_audience(
    client: httpx.AsyncClient, container: Container
) -> None:
    ann, bob, cat, dan, eve = [await make_user(client, name) for name in ("ann", "bob", "cat", "dan", "eve")]
    crew = await open_group(client, ann, [bob, cat])
    pair = await open_group(client, ann, [bob])
    for text in ("one", "two", "three"):
        await send(client, bob, crew["id"], text)
    await send(client, ann, crew["id"], "mine: never unread")
    await send(client, bob, pair["id"], "hello")
    await befriend(client, dan, ann)  # a contact, sharing no conversation
    await befriend(client, ann, eve)
    blocked = await client.post("/api/v1/blocks", json={"user_id": ann.id}, headers=cat.headers)
    assert blocked.status_code == 204, blocked.text

    ready = await ready_reads(container.db, ann.id, ann.session_id, urls=None)
    assert ready.user.id == ann.id
    views = {view.id: view for view in ready.conversations}
    assert (views[crew["id"]].unread_count, views[crew["id"]].shared.member_count) == (3, 3)
    assert (views[pair["id"]].unread_count, views[pair["id"]].shared.member_count) == (1, 2)
    assert views[crew["id"]].shared.last_message is not None
    assert views[crew["id"]].shared.last_message.content == "mine: never unread"
    # Cat blocked Ann: neither sees the other's presence; Ann is never her own audience.
    assert ready.audience == {bob.id, dan.id, eve.id}
    # Each way: Ann blocking Eve hides Eve too.
    blocked = await client.post("/api/v1/blocks", json={"user_id": eve.id}, headers=ann.headers)
    assert blocked.status_code == 204, blocked.text
    assert (await ready_reads(container.db, ann.id, ann.session_id, urls=None)).audience == {bob.id, dan.id}


async def test_a_revoked_session_or_a_deactivated_user_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    ann, bob = await make_user(client, "ann"), await make_user(client, "bob")
    assert (await ready_reads(container.db, bob.id, bob.session_id, urls=None)).user.id == bob.id
    # Another user's session is not this user's.
    with pytest.raises(SessionRevoked):
        await ready_reads(container.db, bob.id, ann.session_id, urls=None)
    assert (await client.post("/api/v1/auth/logout", headers=ann.headers)).status_code == 204
    with pytest.raises(SessionRevoked):
        await ready_reads(container.db, ann.id, ann.session_id, urls=None)
    # Deactivated, its sessions not revoked yet (the moment between the two transactions).
    async with container.db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == bob.id).values(deactivated_at=utcnow()))
    with pytest.raises(SessionRevoked):
        await ready_reads(container.db, bob.id, bob.session_id, urls=None)


async def test_a_burst_of_ready_reads_is_read_together_each_with_its_own_outcome(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions identifying at once are read in one transaction (RealtimeReads batches
    them): each gets its own unread counts, a conversation they share is read once for all
    of them, and a revoked session among them fails alone."""
    ann, bob, cat = [await make_user(client, name) for name in ("ann", "bob", "cat")]
    crew = await open_group(client, ann, [bob, cat])
    for text in ("one", "two"):
        await send(client, bob, crew["id"], text)
    await send(client, cat, crew["id"], "three")
    assert (await client.post("/api/v1/auth/logout", headers=cat.headers)).status_code == 204

    requests = [
        ReadyRequest(ann.id, ann.session_id),
        ReadyRequest(cat.id, cat.session_id),  # revoked
        ReadyRequest(bob.id, bob.session_id),
        ReadyRequest(ann.id, None),  # the same user twice in one batch
        ReadyRequest("0" * 26, None),  # no such user
    ]
    outcomes = await container.db.read_sync(ready_reads_of, requests, None)
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "ReadyReads", "SessionRevoked", "ReadyReads", "ReadyReads", "NotFound"
    ]
    first_ann, _, bobs, second_ann, _ = outcomes
    assert isinstance(first_ann, ReadyReads) and isinstance(bobs, ReadyReads)
    assert isinstance(second_ann, ReadyReads)
    (anns_view,), (bobs_view,) = first_ann.conversations, bobs.conversations
    assert (anns_view.unread_count, bobs_view.unread_count) == (3, 1)  # nobody's own count
    assert anns_view.shared is bobs_view.shared  # read once for both
    assert anns_view.shared.last_message is not None
    assert anns_view.shared.last_message.content == "three"
    assert second_ann.user.id == ann.id and second_ann.audience == first_ann.audience == {bob.id, cat.id}

    # Through the gateway's port, concurrently: every caller gets what a lone read gives,
    # and the callers were read together (fewer transactions than callers).
    transactions = count_read_transactions(container, monkeypatch)
    reads = RealtimeReads(container.db, None)
    try:
        calls = [(user.id, user.session_id) for user in (ann, bob) * 20] + [(cat.id, cat.session_id)]
        answers = await asyncio.gather(
            *(reads.ready(user_id, session_id) for user_id, session_id in calls), return_exceptions=True
        )
    finally:
        await reads.close()
    monkeypatch.undo()
    assert 1 <= transactions.count < len(calls), transactions.count
    assert isinstance(answers[-1], SessionRevoked)
    for (user_id, _), answer in zip(calls[:-1], answers[:-1], strict=True):
        assert isinstance(answer, ReadyReads), answer
        alone = await ready_reads(container.db, user_id, None, urls=None)
        assert answer.user.id == user_id
        assert [view.to_public() for view in answer.conversations] == [
            view.to_public() for view in alone.conversations
        ]
        assert answer.audience == alone.audience


async def test_a_burst_of_identifies_is_read_together_a_revoked_one_failing_alone(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [await make_user(client, f"user{n}") for n in range(8)]
    crew = await open_group(client, people[0], people[1:4])
    revoked = people[-1]
    assert (await client.post("/api/v1/auth/logout", headers=revoked.headers)).status_code == 204

    async def claim(_principal: Principal) -> None:
        return None

    transactions = count_read_transactions(container, monkeypatch)
    answers = await asyncio.gather(
        *(container.auth.identify(user.access_token, claim, member_conversation_ids_of) for user in people * 3),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert 1 <= transactions.count < len(answers), transactions.count
    for user, answer in zip(people * 3, answers, strict=True):
        if user is revoked:
            assert isinstance(answer, SessionRevoked), answer
            continue
        assert not isinstance(answer, BaseException), answer
        principal, conversation_ids = answer
        assert principal.user_id == user.id
        assert conversation_ids == ([crew["id"]] if user in people[:4] else [])


async def test_a_batch_reads_each_user_as_a_lone_read_does(client: httpx.AsyncClient, container: Container) -> None:
    """One statement reads every user's memberships, unread mentions and audience: each
    user in the batch gets exactly what reading them alone gives — counts, mentions and
    audiences differ between people in the same conversations and never leak across."""
    ann, bob, cat, dan, eve = [await make_user(client, name) for name in ("ann", "bob", "cat", "dan", "eve")]
    crew = await open_group(client, ann, [bob, cat, dan])
    pair = await open_group(client, bob, [cat])
    await send(client, ann, crew["id"], "@bob look")
    await send(client, ann, crew["id"], "@bob @cat both of you")
    await send(client, dan, crew["id"], "@ann and nobody else")
    await send(client, cat, pair["id"], "@bob here too")
    await befriend(client, eve, dan)
    asked = await client.post("/api/v1/contacts", json={"user_id": ann.id}, headers=eve.headers)
    assert asked.status_code == 201, asked.text  # never accepted: no audience either way
    for blocker, blocked in ((cat, ann), (dan, bob)):
        response = await client.post("/api/v1/blocks", json={"user_id": blocked.id}, headers=blocker.headers)
        assert response.status_code == 204, response.text

    people = [ann, bob, cat, dan, eve]
    outcomes = await container.db.read_sync(
        ready_reads_of, [ReadyRequest(user.id, user.session_id) for user in people], None
    )
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for user, outcome in zip(people, outcomes, strict=True):
        assert isinstance(outcome, ReadyReads), outcome
        alone = await ready_reads(container.db, user.id, user.session_id, urls=None)
        assert outcome.user.id == user.id
        assert [v.to_public() for v in outcome.conversations] == [v.to_public() for v in alone.conversations]
        assert outcome.audience == alone.audience
        counts[user.username] = {v.id: (v.unread_count, v.unread_mentions) for v in outcome.conversations}
        if user is bob:  # most recently active first
            assert [v.id for v in outcome.conversations] == [pair["id"], crew["id"]]
    assert counts == {
        "ann": {crew["id"]: (1, 1)},
        "bob": {crew["id"]: (3, 2), pair["id"]: (1, 1)},
        "cat": {crew["id"]: (3, 1), pair["id"]: (0, 0)},
        "dan": {crew["id"]: (2, 0)},
        "eve": {},
    }
    audiences = {user.username: outcome.audience for user, outcome in zip(people, outcomes, strict=True)}
    assert audiences == {
        "ann": {bob.id, dan.id},  # cat blocked her
        "bob": {ann.id, cat.id},  # dan blocked him
        "cat": {bob.id, dan.id},
        "dan": {ann.id, cat.id, eve.id},  # eve: a contact, sharing nothing
        "eve": {dan.id},
    }


async def test_a_burst_of_identifies_checks_each_token_against_its_own_session(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Sessions are read for the whole burst at once: a session named with another user's
    id, a revoked one and a deactivated user's are refused, each alone; the same session
    twice is read twice alike."""
    ann, bob, cat = [await make_user(client, name) for name in ("ann", "bob", "cat")]
    crew = await open_group(client, ann, [bob])
    assert (await client.post("/api/v1/auth/logout", headers=bob.headers)).status_code == 204
    async with container.db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == cat.id).values(deactivated_at=utcnow()))
    anns = IdentifyRead(ann.session_id, ann.id, member_conversation_ids_of)
    requests = [
        anns,
        IdentifyRead(ann.session_id, cat.id, member_conversation_ids_of),  # not cat's
        IdentifyRead(bob.session_id, bob.id, member_conversation_ids_of),  # logged out
        IdentifyRead(cat.session_id, cat.id, member_conversation_ids_of),  # deactivated
        IdentifyRead("0" * 26, ann.id, member_conversation_ids_of),  # no such session
        anns,
    ]
    outcomes = await container.db.read_sync(open_sessions_then, requests)
    assert [type(o).__name__ for o in outcomes] == [
        "tuple", "SessionRevoked", "SessionRevoked", "SessionRevoked", "SessionRevoked", "tuple"
    ]
    assert outcomes[0] == outcomes[5]
    assert outcomes[0][1] == [crew["id"]]
