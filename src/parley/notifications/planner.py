"""From committed messages to notification work: the trigger and the plan job.

1. :class:`NotificationTrigger` listens to the services' events on the node that committed
   the messages (each message is emitted on exactly one node), gathers what is emitted
   within a quarter of a second (at most the push delay) and queues one ``notify.plan`` job
   for it, delayed by ``PARLEY_PUSH_DELAY_SECONDS`` — the time a device showing the
   conversation has to mark it read. It never waits on the queue: sends are acknowledged
   without a Redis round trip for notifications. A job per group-commit batch cost a plan
   read per batch (about a millisecond of a reader thread even when nobody can be reached,
   as often as a few hundred times a second under load).
2. The plan job (:meth:`Planner.run`, on whichever node takes it) applies the rules of
   ``rules`` to every member who could be reached (a push subscription, or a verified
   address with digests on) and records each (user, message, channel) that qualifies in the
   ``notifications`` ledger. The insert is "unless it exists", so a plan job that runs twice
   (at-least-once delivery) plans nothing twice.
3. For each new push row it queues one ``notify.push`` job per device and conversation
   (``push_delivery``); email rows wait in the ledger for the digest sweep (``digests``).

A node killed between a commit and the trigger's enqueue (the gathering: at most a quarter
of a second) loses those messages' notifications; the messages themselves are committed and
reach clients by seq.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from parley.clock import utcnow
from parley.jobs.queue import Job, JobQueue
from parley.notifications.email_addresses import read_verified_addresses
from parley.notifications.facts import (
    due,
    read_conversation_facts,
    read_message_facts,
    read_recipients,
    read_thread_follows,
)
from parley.notifications.rules import CONCERNING_EVENTS, RecipientFacts, should_email, should_notify
from parley.observability.metrics import NotificationMetrics
from parley.services.events import Event
from parley.services.notification_settings import read_defaults
from parley.store.db import Database
from parley.store.tables.conversations import members
from parley.store.tables.notifications import email_addresses, notifications, push_subscriptions
from parley.store.upsert import insert_or_ignore

log = logging.getLogger(__name__)

PLAN_JOB = "notify.plan"
PUSH_JOB = "notify.push"
# Message ids per plan job: a group commit batch is at most a few hundred.
MAX_PLAN_IDS = 1000
# How long the trigger gathers emitted messages into one plan job (module docstring, 1.).
GATHER_SECONDS = 0.25


def notifiable(event: Event) -> tuple[str, str] | None:
    """(message id, conversation id) of the message an event creates, if it could notify
    anyone."""
    if event.type != "message.created":
        return None
    message = event.data.get("message")
    if not isinstance(message, dict):
        return None
    kind = message.get("kind")
    system = message.get("system_event") or {}
    if kind == "text" or (kind == "system" and system.get("type") in CONCERNING_EVENTS):
        message_id, conversation_id = message.get("id"), message.get("conversation_id")
        if isinstance(message_id, str) and isinstance(conversation_id, str):
            return message_id, conversation_id
    return None


class NotificationTrigger:
    def __init__(
        self, jobs: JobQueue, *, delay_seconds: float, gather_seconds: float = GATHER_SECONDS
    ) -> None:
        self._jobs = jobs
        self._delay = delay_seconds
        # Never longer than the delay itself: a delay of 0 asks for notifications at once.
        self._gather = min(gather_seconds, delay_seconds)
        self._gathered: list[tuple[str, str]] = []
        self._flushing: asyncio.TimerHandle | None = None
        self._closed = False  # after close: nothing waits for a timer any more
        self._pending: set[asyncio.Task[None]] = set()

    async def on_events(self, events: Sequence[Event]) -> None:
        found = [pair for event in events if (pair := notifiable(event))]
        if not found:
            return
        self._gathered.extend(found)
        if self._gather <= 0 or self._closed or len(self._gathered) >= MAX_PLAN_IDS:
            self._flush()
        elif self._flushing is None:
            self._flushing = asyncio.get_running_loop().call_later(self._gather, self._flush)

    def _flush(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        found, self._gathered = self._gathered, []
        if not found:
            return
        task = asyncio.create_task(self._enqueue(found))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _enqueue(self, found: list[tuple[str, str]]) -> None:
        for start in range(0, len(found), MAX_PLAN_IDS):
            part = found[start : start + MAX_PLAN_IDS]
            payload = {
                "message_ids": [message_id for message_id, _ in part],
                "conversation_ids": sorted({conversation_id for _, conversation_id in part}),
            }
            try:
                await self._jobs.enqueue(PLAN_JOB, payload, delay_seconds=self._delay)
            except Exception:  # the messages are committed; only their notifications are lost
                log.exception("could not queue notifications", extra={"messages": len(part)})

    async def close(self) -> None:
        """Queue what is gathered and let enqueues in flight finish (shutdown: the batch
        was just flushed)."""
        self._closed = True
        self._flush()
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


@dataclass(frozen=True, slots=True)
class Planned:
    """What one plan job decided: ledger rows, and each user's devices."""

    rows: list[dict[str, Any]]
    devices: dict[str, list[str]]  # user id → push subscription ids


def read_plan(
    conn: Connection,
    message_ids: list[str],
    conversation_ids: list[str],
    now: datetime,
    email_delay: float,
) -> Planned:
    # First who could be reached at all (a push subscription, or a verified address): on
    # most messages nobody, and then the messages themselves are never read.
    reachable = select(members.c.user_id).where(
        members.c.conversation_id.in_(conversation_ids),
        members.c.user_id.in_(select(push_subscriptions.c.user_id))
        | members.c.user_id.in_(
            select(email_addresses.c.user_id).where(email_addresses.c.verified_at.is_not(None))
        ),
    )
    user_ids = sorted({row.user_id for row in conn.execute(reachable)})
    if not user_ids:
        return Planned([], {})
    found = {
        m.id: m
        for m in read_message_facts(conn, message_ids).values()
        if m.conversation_id in conversation_ids
    }
    by_conversation = read_conversation_facts(conn, {m.conversation_id for m in found.values()})
    recipients = read_recipients(conn, by_conversation, user_ids)
    devices: dict[str, list[str]] = defaultdict(list)
    for row in conn.execute(
        select(push_subscriptions.c.id, push_subscriptions.c.user_id)
        .where(push_subscriptions.c.user_id.in_(user_ids))
        .order_by(push_subscriptions.c.id)
    ):
        devices[row.user_id].append(row.id)
    follows = read_thread_follows(conn, found.values(), user_ids)
    addresses = read_verified_addresses(conn, user_ids)
    defaults = read_defaults(conn, user_ids)
    # Each conversation's recipients once: a gathered job holds many conversations' messages,
    # and scanning every recipient for each message grew as messages × recipients.
    recipients_of: dict[str, list[tuple[str, RecipientFacts]]] = defaultdict(list)
    for (cid, uid), recipient in recipients.items():
        recipients_of[cid].append((uid, recipient))
    rows: list[dict[str, Any]] = []
    for message in found.values():
        conversation = by_conversation.get(message.conversation_id)
        if conversation is None:
            continue
        cid = message.conversation_id
        for uid, recipient in recipients_of.get(cid, ()):
            base = {
                "user_id": uid,
                "message_id": message.id,
                "conversation_id": cid,
                "seq": message.seq,
                "status": "pending",
                "created_at": message.created_at,
                "digest_id": None,
            }
            follow = follows.get((message.thread_root_id, uid)) if message.thread_root_id else None
            if devices.get(uid) and should_notify(message, conversation, recipient, now, follow):
                rows.append(base | {"channel": "push", "due_at": message.created_at})
            if (
                uid in addresses
                and defaults[uid].email_digest
                and should_email(message, conversation, recipient, now, follow)
            ):
                rows.append(base | {"channel": "email", "due_at": due(message.created_at, email_delay)})
    return Planned(rows, dict(devices))


def record_plan(conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Insert the ledger rows that are new; returns their (user, conversation, channel)."""
    if not rows:
        return []
    statement = insert_or_ignore(
        conn.dialect.name, notifications, ["user_id", "message_id", "channel"]
    ).returning(notifications.c.user_id, notifications.c.conversation_id, notifications.c.channel)
    # Many rows in few statements (SQLAlchemy's "insertmanyvalues"); RETURNING gives only
    # the rows inserted, so a conflict (planned before) is simply absent.
    return [(got.user_id, got.conversation_id, got.channel) for got in conn.execute(statement, rows)]


class Planner:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        metrics: NotificationMetrics,
        *,
        email_delay_seconds: float,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._metrics = metrics
        self._email_delay = email_delay_seconds
        jobs.register(PLAN_JOB, self.run)

    async def run(self, job: Job) -> None:
        ids = _strings(job.payload.get("message_ids"))
        conversation_ids = _strings(job.payload.get("conversation_ids"))
        if not ids or not conversation_ids:
            return
        plan = await self._db.read_sync(read_plan, ids, conversation_ids, utcnow(), self._email_delay)
        if not plan.rows:
            return
        new = await self._db.write(record_plan, plan.rows)
        pushes: set[tuple[str, str]] = set()
        for user_id, conversation_id, channel in new:
            self._metrics.queued.labels(channel).inc()
            if channel == "push":
                pushes.add((user_id, conversation_id))
        for user_id, conversation_id in sorted(pushes):
            for subscription_id in plan.devices.get(user_id, ()):
                await self._jobs.enqueue(
                    PUSH_JOB, {"subscription_id": subscription_id, "conversation_id": conversation_id}
                )


def _strings(raw: object) -> list[str]:
    return [item for item in raw if isinstance(item, str)][:MAX_PLAN_IDS] if isinstance(raw, list) else []
