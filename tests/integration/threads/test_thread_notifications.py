"""Notifications of thread replies (DESIGN §6.5): a reply that lives in its thread only
notifies those who follow the thread and those it mentions, "read" meaning read in the
thread — the rules as pure functions, and the planner on a real database (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from parley.clock import utcnow
from parley.container import Container
from parley.notifications.planner import read_plan
from parley.notifications.rules import (
    ConversationFacts,
    MessageFacts,
    RecipientFacts,
    ThreadFollow,
    should_notify,
)
from parley.services.notification_settings import NotifyLevel
from parley.store.tables.notifications import push_subscriptions
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_group, send

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GROUP = ConversationFacts("C1", "group", "Ops")


def reply(**changes: object) -> MessageFacts:
    values: dict[str, object] = {
        "id": "M9",
        "conversation_id": "C1",
        "seq": 9,
        "sender_id": "ann",
        "kind": "text",
        "content": "in the thread",
        "mentions": (),
        "system_event": None,
        "created_at": NOW,
        "deleted": False,
        "thread_root_id": "M1",
    }
    values.update(changes)
    return MessageFacts(**values)  # type: ignore[arg-type]


def bob(level: NotifyLevel = NotifyLevel.ALL, read: int = 0) -> RecipientFacts:
    return RecipientFacts(user_id="bob", last_read_seq=read, level=level, muted_until=None)


def test_thread_replies_notify_followers_and_mentions_only() -> None:
    following = ThreadFollow(following=True, last_read_seq=3)
    assert should_notify(reply(), GROUP, bob(), NOW, following)
    assert not should_notify(reply(), GROUP, bob(), NOW, None)  # "all" is not enough
    assert not should_notify(reply(), GROUP, bob(), NOW, ThreadFollow(False, 3))  # unfollowed
    assert should_notify(reply(mentions=("bob",)), GROUP, bob(), NOW, None)  # a mention is
    assert not should_notify(reply(), GROUP, bob(), NOW, ThreadFollow(True, 9))  # read in the thread
    # Read further in the conversation does not read the thread; "none" and mutes still win.
    assert should_notify(reply(), GROUP, bob(read=20), NOW, following)
    assert not should_notify(reply(), GROUP, bob(NotifyLevel.NONE), NOW, following)
    # A reply also sent to the conversation is an ordinary message.
    assert should_notify(reply(thread_root_id=None), GROUP, bob(), NOW, None)


@pytest.mark.usefixtures("backend")
@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_the_planner_follows_the_thread(client: httpx.AsyncClient, container: Container) -> None:
    ann, bob_, cat = await make_user(client, "ann"), await make_user(client, "bob"), await make_user(client, "cat")
    group = await open_group(client, ann, [bob_, cat])
    cid = group["id"]
    async with container.db.transaction() as conn:
        for i, user in enumerate((ann, bob_, cat)):
            await conn.execute(
                push_subscriptions.insert().values(
                    id=f"01SUBSCRIPTION00000000000{i}",
                    user_id=user.id,
                    endpoint=f"https://push.example/{i}",
                    p256dh="k",
                    auth="a",
                    created_at=utcnow(),
                )
            )
    root = await send(client, ann, cid, "root")
    # Bob takes part; Cat does not. Ann wrote the root: she follows.
    first = await send(client, bob_, cid, "bob's reply", thread_root_id=root["id"])
    second = await send(client, ann, cid, "ann's reply", thread_root_id=root["id"])
    broadcast = await send(client, ann, cid, "to everyone", thread_root_id=root["id"], thread_broadcast=True)
    third = await send(client, cat, cid, "cat joins in", thread_root_id=root["id"])
    ids = [first["id"], second["id"], broadcast["id"], third["id"]]
    plan = await container.db.read_sync(read_plan, ids, [cid], utcnow(), 300.0)
    pushed = sorted(
        (row["message_id"], row["user_id"]) for row in plan.rows if row["channel"] == "push"
    )
    assert pushed == sorted(
        [
            # Ann follows her root, but answered after Bob: his reply is read in the thread.
            (second["id"], bob_.id),  # Bob follows what he took part in
            (broadcast["id"], bob_.id),  # sent to the conversation: every member
            (broadcast["id"], cat.id),
            (third["id"], ann.id),  # Cat took part: both followers hear of it
            (third["id"], bob_.id),
        ]
    )
