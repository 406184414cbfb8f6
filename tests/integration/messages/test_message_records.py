"""Services return records and the edge serialises them, once: a sent message's event and
its sender's answer share one wire form."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from parley.container import Container
from parley.services.events import Event
from parley.wire.events import EventType
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_direct

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def test_a_sent_message_is_serialised_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = [await make_user(client, name) for name in ("alice", "bob")]
    conversation_id = (await open_direct(client, alice, bob))["id"]
    seen: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        seen.extend(events)

    container.events.add_listener(listen)
    try:
        result = await container.messages.send(alice.id, conversation_id, "hello")
    finally:
        container.events.remove_listener(listen)
    [created] = [e for e in seen if e.type is EventType.MESSAGE_CREATED]
    # The event's payload and the answer's are the same object: built once, not twice.
    assert created.data["message"] is result.message.to_public()
    assert result.message.to_public()["content"] == "hello"


async def test_marking_returns_a_record_the_edges_serialise(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = [await make_user(client, name) for name in ("alice", "bob")]
    conversation_id = (await open_direct(client, alice, bob))["id"]
    sent = await container.messages.send(alice.id, conversation_id, "hi")
    marked = await container.receipts.mark_read(bob.id, conversation_id, sent.message.seq)
    assert marked.to_public() == {
        "conversation_id": conversation_id,
        "last_read_seq": sent.message.seq,
        "last_delivered_seq": sent.message.seq,
        "unread_count": 0,
    }
