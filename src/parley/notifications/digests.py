"""Email digests of missed direct messages and mentions (DESIGN §6.2).

The plan job leaves one ``email`` row per (user, message) in the ledger, due
``PARLEY_EMAIL_NOTIFY_DELAY_SECONDS`` after the message. Then three jobs:

- ``notify.digest_sweep`` (every ``PARLEY_EMAIL_DIGEST_SWEEP_SECONDS`` on every node) finds
  users with due rows whose last digest is older than one window, and queues a
  ``notify.digest`` for each; it also deletes ledger rows older than ``LEDGER_DAYS``.
- ``notify.digest`` *claims* a digest in one write transaction: the due rows (and those due
  within half a window more: a burst of messages makes one email) still worth mailing
  (unread, not muted, still a member, digests on, a verified address) get a new
  ``digest_id``, the others are marked ``skipped``, and ``last_digest_at`` moves to now — only
  if it was at least one window ago, so concurrent jobs (every node sweeps) make one
  digest per user per window. It queues ``notify.digest_send`` for the claimed digest.
- ``notify.digest_send`` renders and mails the digest and marks its rows ``sent``. It is
  keyed by the digest id: a retry after an SMTP failure mails the same digest (same
  Message-ID), and a digest already sent is not sent again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from parley.clock import utcnow
from parley.ids import new_id
from parley.jobs.queue import Job, JobQueue
from parley.jobs.scheduler import Scheduler
from parley.notifications.email_addresses import read_verified_addresses
from parley.notifications.email_kit import EmailKit
from parley.notifications.emails import DigestLine, DigestSection, digest_email
from parley.notifications.facts import (
    actor_of,
    conversation_title,
    read_conversation_facts,
    read_display_names,
    read_message_facts,
    read_recipients,
    read_thread_follows,
)
from parley.notifications.links import PublicLinks
from parley.notifications.rules import preview, should_email
from parley.observability.metrics import NotificationMetrics
from parley.security.link_tokens import LinkPurpose
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.notifications import notification_settings, notifications
from parley.store.upsert import insert_or_ignore

log = logging.getLogger(__name__)

SWEEP_JOB = "notify.digest_sweep"
DIGEST_JOB = "notify.digest"
SEND_JOB = "notify.digest_send"
# Users whose digests one sweep queues; the next sweep takes the rest.
SWEEP_BATCH = 500
# Ledger rows are kept this long (what was notified, for idempotency and inspection).
LEDGER_DAYS = 7
# Messages shown per digest; the subject still counts them all.
MAX_LINES = 50
# A digest that goes out takes along the missed messages that would be due within this
# share of the delay: a burst of messages arrives as one email, not split at the moment
# the first of them became due.
GATHER_SHARE = 0.5


def due_users(conn: Connection, now: datetime, window: timedelta) -> list[str]:
    rows = conn.execute(
        select(notifications.c.user_id)
        .distinct()
        .join(
            notification_settings,
            notification_settings.c.user_id == notifications.c.user_id,
            isouter=True,
        )
        .where(
            notifications.c.status == "pending",
            notifications.c.due_at <= now,
            notifications.c.channel == "email",
            (notification_settings.c.last_digest_at.is_(None))
            | (notification_settings.c.last_digest_at <= now - window),
        )
        .limit(SWEEP_BATCH)
    )
    return [row.user_id for row in rows]


def has_old(conn: Connection, now: datetime) -> bool:
    """Whether any ledger row is past keeping (read first: the sweep runs every half
    minute on every node, and must not take SQLite's write lock for nothing)."""
    cutoff = now - timedelta(days=LEDGER_DAYS)
    found = conn.execute(select(notifications.c.user_id).where(notifications.c.created_at < cutoff).limit(1))
    return found.first() is not None


def forget_old(conn: Connection, now: datetime) -> None:
    conn.execute(delete(notifications).where(notifications.c.created_at < now - timedelta(days=LEDGER_DAYS)))


def claim_digest(
    conn: Connection, user_id: str, now: datetime, window: timedelta, digest_id: str
) -> bool:
    """Claim the user's due email rows (and those due within ``GATHER_SHARE`` of the
    window) as one digest; False when there is none to send."""
    conn.execute(
        insert_or_ignore(conn.dialect.name, notification_settings, ["user_id"]).values(
            user_id=user_id, notify_default="all", email_digest=True, last_digest_at=None
        )
    )
    state = conn.execute(
        select(notification_settings)
        .where(notification_settings.c.user_id == user_id)
        .with_for_update()
    ).one()
    mine = (
        notifications.c.user_id == user_id,
        notifications.c.channel == "email",
        notifications.c.status == "pending",
        notifications.c.due_at <= now + window * GATHER_SHARE,
    )
    rows = list(
        conn.execute(
            select(notifications.c.message_id, notifications.c.conversation_id, notifications.c.due_at)
            .where(*mine)
        )
    )
    if not rows or min(row.due_at for row in rows) > now:
        return False
    if state.last_digest_at is not None and state.last_digest_at > now - window:
        return False  # another digest went out within this window; the sweep comes back
    address = read_verified_addresses(conn, [user_id]).get(user_id)
    keep: list[str] = []
    if address is not None and state.email_digest:
        found = read_message_facts(conn, [row.message_id for row in rows])
        by_conversation = read_conversation_facts(conn, {row.conversation_id for row in rows})
        recipients = read_recipients(conn, by_conversation, [user_id])
        follows = read_thread_follows(conn, found.values(), [user_id])
        for message in found.values():
            conversation = by_conversation.get(message.conversation_id)
            recipient = recipients.get((message.conversation_id, user_id))
            follow = follows.get((message.thread_root_id, user_id)) if message.thread_root_id else None
            if conversation and recipient and should_email(message, conversation, recipient, now, follow):
                keep.append(message.id)
    claimed = set(keep)
    dropped = [row.message_id for row in rows if row.message_id not in claimed]
    if dropped:
        conn.execute(
            update(notifications)
            .where(*mine, notifications.c.message_id.in_(dropped))
            .values(status="skipped")
        )
    if not keep:
        return False
    conn.execute(
        update(notifications)
        .where(*mine, notifications.c.message_id.in_(keep))
        .values(status="claimed", digest_id=digest_id)
    )
    conn.execute(
        update(notification_settings)
        .where(notification_settings.c.user_id == user_id)
        .values(last_digest_at=now)
    )
    return True


@dataclass(frozen=True, slots=True)
class DigestContent:
    address: str
    display_name: str
    sections: list[DigestSection]
    created_at: list[datetime]


def read_digest(
    conn: Connection, user_id: str, digest_id: str, links: PublicLinks
) -> DigestContent | None:
    rows = list(
        conn.execute(
            select(notifications.c.message_id).where(
                notifications.c.digest_id == digest_id,
                notifications.c.user_id == user_id,
                notifications.c.status == "claimed",
            )
        )
    )
    address = read_verified_addresses(conn, [user_id]).get(user_id)
    person = conn.execute(select(users.c.display_name).where(users.c.id == user_id)).first()
    if not rows or address is None or person is None:
        return None
    found = sorted(
        read_message_facts(conn, [row.message_id for row in rows]).values(),
        key=lambda m: (m.created_at, m.seq),
    )
    by_conversation = read_conversation_facts(conn, {m.conversation_id for m in found})
    names = read_display_names(conn, {actor_of(m) for m in found})
    grouped: dict[str, list[DigestLine]] = defaultdict(list)
    titles: dict[str, str] = {}
    for message in found[-MAX_LINES:]:
        conversation = by_conversation.get(message.conversation_id)
        if conversation is None:
            continue
        sender = names.get(actor_of(message) or "", "Someone")
        title = conversation_title(conversation, names, actor_of(message))
        titles.setdefault(conversation.id, title)
        grouped[conversation.id].append(
            DigestLine(
                sender=sender,
                text=preview(message, conversation, sender_name=sender, conversation_name=title),
                sent_at=message.created_at,
                link=links.message(conversation.id, message.id),
            )
        )
    sections = [
        DigestSection(titles[cid], links.conversation(cid), tuple(lines)) for cid, lines in grouped.items()
    ]
    if not sections:
        return None
    return DigestContent(address, person.display_name, sections, [m.created_at for m in found])


def mark_sent(conn: Connection, digest_id: str) -> None:
    conn.execute(
        update(notifications)
        .where(notifications.c.digest_id == digest_id, notifications.c.status == "claimed")
        .values(status="sent")
    )


class Digests:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        scheduler: Scheduler,
        email: EmailKit,
        metrics: NotificationMetrics,
        *,
        delay_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._mailer = email.mailer
        self._signer = email.signer
        self._links = email.links
        self._metrics = metrics
        self._window = timedelta(seconds=delay_seconds)
        jobs.register(SWEEP_JOB, self.sweep)
        jobs.register(DIGEST_JOB, self.claim)
        jobs.register(SEND_JOB, self.send)
        scheduler.every(sweep_seconds, SWEEP_JOB)

    async def sweep(self, job: Job) -> None:
        now = utcnow()
        if await self._db.read_sync(has_old, now):
            await self._db.write(forget_old, now)
        if not self._mailer.enabled:
            return
        for user_id in await self._db.read_sync(due_users, now, self._window):
            await self._jobs.enqueue(DIGEST_JOB, {"user_id": user_id})

    async def claim(self, job: Job) -> None:
        user_id = job.payload.get("user_id")
        if not isinstance(user_id, str):
            return
        digest_id = new_id()
        if await self._db.write(claim_digest, user_id, utcnow(), self._window, digest_id):
            await self._jobs.enqueue(SEND_JOB, {"user_id": user_id, "digest_id": digest_id})

    async def send(self, job: Job) -> None:
        user_id, digest_id = job.payload.get("user_id"), job.payload.get("digest_id")
        if not isinstance(user_id, str) or not isinstance(digest_id, str):
            return
        content = await self._db.read_sync(read_digest, user_id, digest_id, self._links)
        if content is None:
            return
        token = self._signer.issue(LinkPurpose.UNSUBSCRIBE_DIGEST, user_id)
        email = digest_email(
            to=content.address,
            display_name=content.display_name,
            sections=content.sections,
            unsubscribe_link=self._links.unsubscribe(token),
            settings_link=self._links.settings_page(),
            digest_id=digest_id,
        )
        try:
            await self._mailer.send(email)
        except Exception as exc:
            self._metrics.failed.labels("email", type(exc).__name__).inc()
            raise
        await self._db.write(mark_sent, digest_id)
        now = utcnow()
        self._metrics.sent.labels("email").inc()
        for created_at in content.created_at:
            self._metrics.latency.labels("email").observe((now - created_at).total_seconds())
