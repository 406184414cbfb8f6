"""One group-commit batch spanning many conversations: every request gets its own outcome.

The batch reads every conversation's checks at once (membership, blocks, repeated
``client_msg_id``, reply targets), so a blocked direct conversation, a non-member, an
unknown conversation and a bad reply must fail alone while the rest commit with gapless
seqs per conversation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from parley.container import Container
from parley.errors import Blocked, NotFound, ValidationFailed
from parley.services.message_sending import SendResult
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_direct, open_group, send

pytestmark = [
    pytest.mark.usefixtures("backend"),
    # A long window so that everything gathered below lands in one batch.
    pytest.mark.settings(group_commit_window_ms=200.0, **NO_SEND_LIMITS),
]


async def test_mixed_batch_outcomes_are_per_request(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob, carol, dave = [await make_user(client, n) for n in ("alice", "bob", "carol", "dave")]
    dm_ab = (await open_direct(client, alice, bob))["id"]
    dm_ac = (await open_direct(client, alice, carol))["id"]
    group = await open_group(client, alice, [bob])
    earlier = await send(client, alice, dm_ab, "first", client_msg_id="c-1")
    elsewhere = await send(client, bob, group["id"], "in the group")
    assert (await client.post("/api/v1/blocks", json={"user_id": alice.id}, headers=carol.headers)).status_code == 204
    before = {
        cid: (await client.get(f"/api/v1/conversations/{cid}", headers=alice.headers)).json()["conversation"]["last_seq"]
        for cid in (dm_ab, group["id"])
    }
    messages = container.messages

    calls: dict[str, Any] = {
        "dm": messages.send(alice.id, dm_ab, "hello bob"),
        "dm reply": messages.send(bob.id, dm_ab, "hi", reply_to_id=earlier["id"]),
        "resend": messages.send(alice.id, dm_ab, "first", client_msg_id="c-1"),
        "twice 1": messages.send(bob.id, dm_ab, "same", client_msg_id="t-1"),
        "twice 2": messages.send(bob.id, dm_ab, "same", client_msg_id="t-1"),
        "blocked": messages.send(alice.id, dm_ac, "hello carol"),
        "group": messages.send(alice.id, group["id"], "hello team"),
        "outsider": messages.send(dave.id, group["id"], "let me in"),
        "bad reply": messages.send(alice.id, group["id"], "re", reply_to_id=earlier["id"]),
        "unknown": messages.send(alice.id, "0" * 26, "nobody"),
    }
    outcomes = dict(zip(calls, await asyncio.gather(*calls.values(), return_exceptions=True), strict=True))

    assert isinstance(outcomes["blocked"], Blocked)
    assert isinstance(outcomes["outsider"], NotFound)
    assert isinstance(outcomes["unknown"], NotFound)
    assert isinstance(outcomes["bad reply"], ValidationFailed)
    resend = outcomes["resend"]
    assert isinstance(resend, SendResult) and not resend.created and resend.message.id == earlier["id"]
    first, second = outcomes["twice 1"], outcomes["twice 2"]
    assert isinstance(first, SendResult) and isinstance(second, SendResult)
    assert first.created and not second.created and first.message.id == second.message.id
    reply = outcomes["dm reply"]
    assert isinstance(reply, SendResult) and reply.message.reply_to is not None
    assert reply.message.reply_to.id == earlier["id"]

    created = [o.message for o in outcomes.values() if isinstance(o, SendResult) and o.created]
    for cid in (dm_ab, group["id"]):
        seqs = sorted(m.seq for m in created if m.conversation_id == cid)
        assert seqs == list(range(before[cid] + 1, before[cid] + 1 + len(seqs)))
        page = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=alice.headers)).json()
        stored = {m["id"]: m for m in page["messages"]}
        for message in created:
            if message.conversation_id == cid:
                assert stored[message.id] == message.to_public()  # the ack is what was stored
    assert elsewhere["conversation_id"] == group["id"]


async def test_a_poisoned_send_fails_alone_in_a_batch_of_50(
    client: httpx.AsyncClient, container: Container
) -> None:
    """One send the database refuses (a reply_to_id no driver can encode: an unpaired
    surrogate fails SQLite's and asyncpg's encoding alike) shares a batch with 49 sends of
    other users: it fails alone; the 49 commit, are acknowledged and stored in order.
    (Before, the whole batch failed: every sender got INTERNAL_ERROR.)"""
    people = [await make_user(client, f"user{i}") for i in range(5)]
    group = await open_group(client, people[0], people[1:])
    sends = [
        container.messages.send(people[i % 5].id, group["id"], f"message {i}")
        if i != 25
        else container.messages.send(people[0].id, group["id"], "poison", reply_to_id="x\ud800")
        for i in range(50)
    ]
    outcomes = await asyncio.gather(*sends, return_exceptions=True)
    assert not isinstance(outcomes[25], SendResult)
    good = [o for i, o in enumerate(outcomes) if i != 25]
    assert all(isinstance(o, SendResult) and o.created for o in good), [
        type(o).__name__ for o in good if not isinstance(o, SendResult)
    ]
    page = (
        await client.get(
            f"/api/v1/conversations/{group['id']}/messages", params={"limit": 100}, headers=people[0].headers
        )
    ).json()["messages"]
    texts = [m["content"] for m in page if m["kind"] == "text"]
    assert texts == [f"message {i}" for i in range(50) if i != 25]
    seqs = [m["seq"] for m in page]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
