"""The ``notify.push`` job: bring one device up to date for one conversation.

Each (device, conversation) has a row in ``push_states``: ``pushed_seq`` is the newest
message a push to that device covered. A job, in one write transaction:

1. drops the subscription if its session has ended (logged out, expired) — and stops;
2. stops if the user is no longer a member;
3. *coalesces*: if this device got a push for this conversation less than
   ``PARLEY_PUSH_COALESCE_SECONDS`` ago, it makes sure one follow-up job is queued for the
   end of that window (``flush_at``) and stops — the follow-up carries everything that
   arrived meanwhile, as one notification;
4. collects the ledger's push rows after ``max(pushed_seq, last_read_seq)`` that still pass
   the rules *now* (read meanwhile, muted, deleted: dropped);
5. *claims* them: ``claimed_seq``, its own job id, ``sent_at``.

Then it sends, outside the transaction, and records the outcome: delivered → ``pushed_seq``
moves up and the ledger rows are ``sent``; 404/410 → the subscription is deleted;
429/5xx/no answer → the job fails and is retried with backoff, and the retry (same job id)
resends exactly what it claimed; any other refusal is counted and given up.

Two jobs for the same device and conversation (two messages, two nodes) cannot both send:
the claim is taken under the row's lock (``FOR UPDATE`` on PostgreSQL, the write lock on
SQLite), and the loser sees a push in flight or sent within the window. A claim whose job
died is taken over after ``CLAIM_TIMEOUT``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, select, update

from parley.clock import isoformat, utcnow
from parley.jobs.queue import Job, JobQueue
from parley.notifications.facts import (
    actor_of,
    conversation_title,
    read_conversation_facts,
    read_display_names,
    read_message_facts,
    read_recipients,
    read_thread_follows,
)
from parley.notifications.links import message_path
from parley.notifications.planner import PUSH_JOB
from parley.notifications.rules import (
    ConversationFacts,
    MessageFacts,
    ThreadFollow,
    is_personal,
    preview,
    should_notify,
)
from parley.notifications.webpush import (
    MAX_PLAINTEXT_BYTES,
    PushOutcome,
    PushTarget,
    Urgency,
    WebPushSender,
    topic_for,
)
from parley.observability.metrics import NotificationMetrics
from parley.store.db import Database
from parley.store.tables.accounts import sessions
from parley.store.tables.notifications import notifications, push_states, push_subscriptions
from parley.store.upsert import insert_or_ignore

log = logging.getLogger(__name__)

# A claim older than this, by a job that never finished (killed, dead-lettered), is
# taken over. Longer than a job's whole retry schedule (1+2+4+8 s plus timeouts).
CLAIM_TIMEOUT = timedelta(minutes=10)
# Unread messages looked at per push: the notification shows the newest and a count.
MAX_COLLECTED = 50
TITLE_CHARS = 100


class PushRetry(Exception):
    """The push service could not take the push now; the job is retried."""


@dataclass(frozen=True, slots=True)
class Nothing:
    """Nothing to push (or the subscription is gone)."""


@dataclass(frozen=True, slots=True)
class Throttled:
    follow_up_in: float | None  # seconds until a follow-up should run; None: one is queued


@dataclass(frozen=True, slots=True)
class Send:
    user_id: str
    target: PushTarget
    claimed_seq: int
    payload: bytes
    topic: str
    urgency: Urgency
    created_at: tuple[datetime, ...]  # of the messages covered (latency)


Claim = Nothing | Throttled | Send


def build_payload(
    conversation: ConversationFacts,
    newest: MessageFacts,
    count: int,
    names: dict[str, str],
) -> bytes:
    """The JSON the service worker shows: title, body, a deep link, a per-conversation tag
    (a new notification replaces the last one of the conversation)."""
    actor = actor_of(newest)
    sender = names.get(actor or "", "Someone")
    title_name = conversation_title(conversation, names, actor)
    title = sender if conversation.is_direct else f"{sender} in {title_name}"
    if count > 1:
        title = f"{title} ({count} new)"
    body = preview(newest, conversation, sender_name=sender, conversation_name=title_name)
    data = {
        "v": 1,
        "type": "message",
        "conversation_id": conversation.id,
        "message_id": newest.id,
        "seq": newest.seq,
        "count": count,
        "title": title[:TITLE_CHARS],
        "body": body,
        "url": message_path(conversation.id, newest.id),
        "tag": f"conversation:{conversation.id}",
        "sent_at": isoformat(newest.created_at),
    }
    encoded = json.dumps(data, ensure_ascii=False).encode()
    if len(encoded) > MAX_PLAINTEXT_BYTES:  # long names: the body gives way
        data["body"] = body[:40]
        encoded = json.dumps(data, ensure_ascii=False).encode()
    return encoded


def claim_push(
    conn: Connection,
    subscription_id: str,
    conversation_id: str,
    job_id: str,
    now: datetime,
    window: timedelta,
) -> Claim:
    sub = conn.execute(
        select(push_subscriptions, sessions.c.revoked_at, sessions.c.expires_at)
        .join(sessions, sessions.c.id == push_subscriptions.c.session_id, isouter=True)
        .where(push_subscriptions.c.id == subscription_id)
    ).first()
    if sub is None:
        return Nothing()
    if sub.session_id is None or sub.revoked_at is not None or sub.expires_at <= now:
        conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id == subscription_id))
        return Nothing()
    recipient = read_recipients(conn, [conversation_id], [sub.user_id]).get(
        (conversation_id, sub.user_id)
    )
    if recipient is None:
        return Nothing()
    key = (push_states.c.subscription_id == subscription_id, push_states.c.conversation_id == conversation_id)
    conn.execute(
        insert_or_ignore(conn.dialect.name, push_states, ["subscription_id", "conversation_id"]).values(
            subscription_id=subscription_id,
            conversation_id=conversation_id,
            pushed_seq=0,
            claimed_seq=0,
            job_id=None,
            sent_at=None,
            flush_at=None,
        )
    )
    state = conn.execute(select(push_states).where(*key).with_for_update()).one()
    in_flight = state.job_id is not None and state.claimed_seq > state.pushed_seq
    retrying = in_flight and state.job_id == job_id
    if in_flight and not retrying and state.sent_at > now - CLAIM_TIMEOUT:
        return _follow_up(conn, key, state.flush_at, now + window, now)
    if not retrying and state.sent_at is not None and state.sent_at > now - window:
        return _follow_up(conn, key, state.flush_at, state.sent_at + window, now)

    floor = max(int(state.pushed_seq), recipient.last_read_seq)
    ceiling = int(state.claimed_seq) if retrying else None
    ledger = select(notifications.c.message_id).where(
        notifications.c.conversation_id == conversation_id,
        notifications.c.user_id == sub.user_id,
        notifications.c.channel == "push",
        notifications.c.seq > floor,
        notifications.c.status != "skipped",
    )
    if ceiling is not None:
        ledger = ledger.where(notifications.c.seq <= ceiling)
    ids = [row.message_id for row in conn.execute(ledger.order_by(notifications.c.seq.desc()).limit(MAX_COLLECTED))]
    conversation = read_conversation_facts(conn, [conversation_id]).get(conversation_id)
    found = read_message_facts(conn, ids)
    follows = read_thread_follows(conn, found.values(), [sub.user_id])

    def follow_of(m: MessageFacts) -> ThreadFollow | None:
        return follows.get((m.thread_root_id, sub.user_id)) if m.thread_root_id else None

    wanted = sorted(
        (
            m
            for m in found.values()
            if conversation and should_notify(m, conversation, recipient, now, follow_of(m))
        ),
        key=lambda m: m.seq,
    )
    if conversation is None or not wanted:
        # Read, muted or deleted meanwhile: nothing to say, nothing in flight.
        conn.execute(
            update(push_states)
            .where(*key)
            .values(flush_at=None, pushed_seq=max(int(state.pushed_seq), ceiling or 0))
        )
        return Nothing()
    newest = wanted[-1]
    names = read_display_names(conn, {actor_of(m) for m in wanted})
    conn.execute(
        update(push_states)
        .where(*key)
        .values(claimed_seq=newest.seq, job_id=job_id, sent_at=now, flush_at=None)
    )
    urgent = any(is_personal(m, conversation, sub.user_id) for m in wanted)
    return Send(
        user_id=sub.user_id,
        target=PushTarget(sub.endpoint, sub.p256dh, sub.auth),
        claimed_seq=newest.seq,
        payload=build_payload(conversation, newest, len(wanted), names),
        topic=topic_for(conversation_id),
        urgency=Urgency.HIGH if urgent else Urgency.NORMAL,
        created_at=tuple(m.created_at for m in wanted),
    )


def _follow_up(
    conn: Connection,
    key: tuple[ColumnElement[bool], ColumnElement[bool]],
    flush_at: datetime | None,
    at: datetime,
    now: datetime,
) -> Throttled:
    """Queue one follow-up for ``at`` unless one is queued already."""
    if flush_at is not None and flush_at > now:
        return Throttled(None)
    conn.execute(update(push_states).where(*key).values(flush_at=at))
    return Throttled(max((at - now).total_seconds(), 0.0))


def settle_push(
    conn: Connection,
    subscription_id: str,
    conversation_id: str,
    user_id: str,
    job_id: str,
    claimed_seq: int,
    now: datetime,
    *,
    delivered: bool,
) -> None:
    """The claim is over (delivered, or refused for good): move ``pushed_seq`` up."""
    conn.execute(
        update(push_states)
        .where(
            push_states.c.subscription_id == subscription_id,
            push_states.c.conversation_id == conversation_id,
            push_states.c.job_id == job_id,
        )
        .values(pushed_seq=claimed_seq, job_id=None)
    )
    if delivered:
        conn.execute(
            update(push_subscriptions)
            .where(push_subscriptions.c.id == subscription_id)
            .values(last_success_at=now)
        )
        conn.execute(
            update(notifications)
            .where(
                notifications.c.conversation_id == conversation_id,
                notifications.c.user_id == user_id,
                notifications.c.channel == "push",
                notifications.c.seq <= claimed_seq,
                notifications.c.status == "pending",
            )
            .values(status="sent")
        )


def drop_subscription(conn: Connection, subscription_id: str) -> None:
    conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id == subscription_id))


class PushDelivery:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        sender: WebPushSender,
        metrics: NotificationMetrics,
        *,
        coalesce_seconds: float,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._sender = sender
        self._metrics = metrics
        self._window = timedelta(seconds=coalesce_seconds)
        jobs.register(PUSH_JOB, self.run)

    async def run(self, job: Job) -> None:
        subscription_id = job.payload.get("subscription_id")
        conversation_id = job.payload.get("conversation_id")
        if not isinstance(subscription_id, str) or not isinstance(conversation_id, str):
            return
        claim = await self._db.write(
            claim_push, subscription_id, conversation_id, job.id, utcnow(), self._window
        )
        if isinstance(claim, Throttled):
            if claim.follow_up_in is not None:
                await self._jobs.enqueue(
                    PUSH_JOB,
                    {"subscription_id": subscription_id, "conversation_id": conversation_id},
                    delay_seconds=claim.follow_up_in,
                )
            return
        if isinstance(claim, Nothing):
            return
        result = await self._sender.send(
            claim.target, claim.payload, topic=claim.topic, urgency=claim.urgency
        )
        now = utcnow()
        if result.outcome is PushOutcome.RETRY:
            self._metrics.failed.labels("push", f"http_{result.status or 'error'}").inc()
            raise PushRetry(f"push service answered {result.status}: {result.detail}")
        if result.outcome is PushOutcome.GONE:
            await self._db.write(drop_subscription, subscription_id)
            self._metrics.subscriptions_removed.inc()
            return
        delivered = result.outcome is PushOutcome.DELIVERED
        await self._db.write(
            settle_push,
            subscription_id,
            conversation_id,
            claim.user_id,
            job.id,
            claim.claimed_seq,
            now,
            delivered=delivered,
        )
        if delivered:
            self._metrics.sent.labels("push").inc()
            for created_at in claim.created_at:
                self._metrics.latency.labels("push").observe((now - created_at).total_seconds())
        else:
            self._metrics.failed.labels("push", f"http_{result.status}").inc()
            log.warning(
                "push refused for good",
                extra={"status": result.status, "detail": result.detail, "subscription_id": subscription_id},
            )
