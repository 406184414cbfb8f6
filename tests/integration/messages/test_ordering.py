"""Ordering and durability: concurrent senders get gapless, unique seqs; every accepted
message is present exactly once; events go out after commit, in seq order per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest

from parley.container import Container
from parley.services.events import Event
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_group

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]

SENDERS = 50
MESSAGES_EACH = 4


async def test_fifty_concurrent_senders_get_gapless_seqs(
    client: httpx.AsyncClient, container: Container
) -> None:
    users = [await make_user(client, f"sender{i:02d}") for i in range(SENDERS)]
    group = await open_group(client, users[0], users[1:])
    cid = group["id"]
    start_seq = group["last_seq"]
    seen_events: list[Event] = []

    async def record(events: Sequence[Event]) -> None:
        seen_events.extend(e for e in events if e.type == "message.created")

    container.events.add_listener(record)

    async def sender(index: int) -> list[int]:
        seqs = []
        for n in range(MESSAGES_EACH):
            response = await client.post(
                f"/api/v1/conversations/{cid}/messages",
                json={"content": f"{index}:{n}", "client_msg_id": f"u{index}-m{n}"},
                headers=users[index].headers,
            )
            assert response.status_code == 201, response.text
            seqs.append(response.json()["message"]["seq"])
        return seqs

    results = await asyncio.gather(*(sender(i) for i in range(SENDERS)))
    acked = sorted(seq for seqs in results for seq in seqs)
    total = SENDERS * MESSAGES_EACH
    assert acked == list(range(start_seq + 1, start_seq + total + 1))  # gapless and unique
    for seqs in results:
        assert seqs == sorted(seqs)  # each sender's messages keep their order

    stored: list[dict[str, object]] = []
    after = start_seq
    while True:
        page = (
            await client.get(
                f"/api/v1/conversations/{cid}/changes", params={"after_seq": after}, headers=users[0].headers
            )
        ).json()
        stored.extend(page["messages"])
        after = page["next_after_seq"]
        if not page["has_more"]:
            break
    contents = [m["content"] for m in stored]
    assert len(contents) == total and len(set(contents)) == total
    assert sorted(m["seq"] for m in stored) == acked  # type: ignore[type-var]

    event_seqs = [e.data["seq"] for e in seen_events if e.conversation_id == cid]
    assert sorted(event_seqs) == acked
    histogram = container.metrics.group_commit_batch
    assert histogram._sum.get() == total  # type: ignore[attr-defined]
    batches = sum(b.get() for b in histogram._buckets)  # type: ignore[attr-defined]
    assert batches < total  # concurrent sends really were committed together


async def test_resend_after_lost_ack_does_not_duplicate(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    # The same client_msg_id sent concurrently (a retry racing the original) is stored once.
    results = await asyncio.gather(
        *(container.messages.send(alice.id, group["id"], "once", client_msg_id="retry-1") for _ in range(5))
    )
    assert len({r.message.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
