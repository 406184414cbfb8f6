"""The notification rules as pure functions, and the digest claim's "one per user per
window" on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from parley.container import Container
from parley.notifications.digests import claim_digest
from parley.notifications.rules import (
    ConversationFacts,
    MessageFacts,
    RecipientFacts,
    plain_preview,
    preview,
    should_email,
    should_notify,
)
from parley.services.notification_settings import NotifyLevel
from parley.store.tables.notifications import email_addresses, notifications
from tests.conftest import make_user
from tests.support.chat_helpers import open_direct, send

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GROUP = ConversationFacts("C1", "group", "Ops")
DIRECT = ConversationFacts("C2", "direct", None)
SECRET = ConversationFacts("C3", "group", "Vault", encrypted=True)


def message(**changes: object) -> MessageFacts:
    values: dict[str, object] = {
        "id": "M1",
        "conversation_id": "C1",
        "seq": 5,
        "sender_id": "ann",
        "kind": "text",
        "content": "hello **team**",
        "mentions": (),
        "system_event": None,
        "created_at": NOW,
        "deleted": False,
    }
    values.update(changes)
    return MessageFacts(**values)  # type: ignore[arg-type]


def bob(level: NotifyLevel = NotifyLevel.ALL, **changes: object) -> RecipientFacts:
    values: dict[str, object] = {"user_id": "bob", "last_read_seq": 4, "level": level, "muted_until": None}
    values.update(changes)
    return RecipientFacts(**values)  # type: ignore[arg-type]


def test_who_is_notified() -> None:
    assert should_notify(message(), GROUP, bob(), NOW)
    assert not should_notify(message(sender_id="bob"), GROUP, bob(), NOW)  # own message
    assert not should_notify(message(), GROUP, bob(last_read_seq=5), NOW)  # read somewhere
    assert not should_notify(message(deleted=True), GROUP, bob(), NOW)
    assert not should_notify(message(), GROUP, bob(muted_until=NOW + timedelta(minutes=1)), NOW)
    assert should_notify(message(), GROUP, bob(muted_until=NOW - timedelta(minutes=1)), NOW)  # expired
    assert not should_notify(message(mentions=("bob",)), GROUP, bob(muted_until=NOW + timedelta(days=1)), NOW)
    # Levels.
    assert not should_notify(message(), GROUP, bob(NotifyLevel.MENTIONS), NOW)
    assert should_notify(message(mentions=("bob",)), GROUP, bob(NotifyLevel.MENTIONS), NOW)
    assert should_notify(message(conversation_id="C2"), DIRECT, bob(NotifyLevel.MENTIONS), NOW)
    assert not should_notify(message(mentions=("bob",)), GROUP, bob(NotifyLevel.NONE), NOW)
    # System messages only when they concern you, done by someone else.
    added = {"type": "member.added", "actor_id": "ann", "user_ids": ["bob"]}
    assert should_notify(message(kind="system", sender_id=None, system_event=added), GROUP, bob(NotifyLevel.MENTIONS), NOW)
    renamed = {"type": "conversation.updated", "actor_id": "ann", "changes": {"name": "x"}}
    assert not should_notify(message(kind="system", sender_id=None, system_event=renamed), GROUP, bob(), NOW)
    self_added = {"type": "member.added", "actor_id": "bob", "user_ids": ["bob"]}
    assert not should_notify(message(kind="system", sender_id=None, system_event=self_added), GROUP, bob(), NOW)
    other = {"type": "member.added", "actor_id": "ann", "user_ids": ["carol"]}
    assert not should_notify(message(kind="system", sender_id=None, system_event=other), GROUP, bob(), NOW)


def test_email_carries_only_direct_messages_and_mentions() -> None:
    assert not should_email(message(), GROUP, bob(), NOW)
    assert should_email(message(mentions=("bob",)), GROUP, bob(), NOW)
    assert should_email(message(conversation_id="C2"), DIRECT, bob(), NOW)
    assert not should_email(message(conversation_id="C2"), DIRECT, bob(NotifyLevel.NONE), NOW)


def test_what_a_notification_says() -> None:
    assert preview(message(), GROUP, sender_name="Ann", conversation_name="Ops") == "hello team"
    assert preview(message(), SECRET, sender_name="Ann", conversation_name="Vault") == "New message"
    files = message(content="", attachment_names=("plan.pdf", "b.png"))
    assert preview(files, GROUP, sender_name="Ann", conversation_name="Ops") == "📎 plan.pdf and 1 more"
    added = message(kind="system", sender_id=None, system_event={"type": "member.added", "actor_id": "ann", "user_ids": ["bob"]})
    assert preview(added, GROUP, sender_name="Ann", conversation_name="Ops") == "Ann added you in Ops"
    assert plain_preview("```\ncode\n```  and\n\n~~old~~ `x`") == "[code] and old x"
    assert len(plain_preview("a" * 500)) == 200


@pytest.mark.usefixtures("backend")
async def test_one_digest_per_user_per_window(client: httpx.AsyncClient, container: Container) -> None:
    ann = await make_user(client, "ann")
    bob_user = await make_user(client, "bob")
    dm = await open_direct(client, ann, bob_user)
    first = await send(client, ann, dm["id"], "one")
    second = await send(client, ann, dm["id"], "two")
    now = datetime.now(UTC)
    window = timedelta(minutes=5)
    async with container.db.transaction() as conn:
        await conn.execute(
            email_addresses.insert().values(
                user_id=bob_user.id, address="bob@example.org", address_key="bob@example.org",
                created_at=now, verified_at=now,
            )
        )
        for sent in (first, second):
            await conn.execute(
                notifications.insert().values(
                    user_id=bob_user.id, message_id=sent["id"], channel="email", conversation_id=dm["id"],
                    seq=sent["seq"], status="pending", created_at=now, due_at=now - timedelta(seconds=1),
                    digest_id=None,
                )
            )
    assert await container.db.write(claim_digest, bob_user.id, now, window, "D1")
    # Another job at the same moment (another node): the window is taken, nothing claimed.
    async with container.db.transaction() as conn:
        await conn.execute(
            notifications.update()
            .where(notifications.c.message_id == second["id"])
            .values(status="pending", digest_id=None)
        )
    assert not await container.db.write(claim_digest, bob_user.id, now, window, "D2")
    assert await container.db.write(claim_digest, bob_user.id, now + window, window, "D3")
    async with container.db.read() as conn:
        rows = {r.message_id: r.digest_id for r in await conn.execute(notifications.select())}
    assert rows == {first["id"]: "D1", second["id"]: "D3"}
