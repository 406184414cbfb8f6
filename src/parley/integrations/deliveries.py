"""Outgoing webhooks (DESIGN §6.6): after a message commits, a signed POST of it to each
outgoing webhook of its conversation, as jobs; a ``{text}`` answer is posted back as the
webhook's bot.

Flow:
1. ``on_events`` (after commit, in the sender's fan-out path) only looks at an in-memory
   set of conversations that have enabled outgoing webhooks, refreshed from the database
   at most every :data:`HOOKED_TTL_SECONDS` (and at once on this node when one changes),
   so a message in a conversation without webhooks costs no query and no job. It queues
   ``webhooks.dispatch`` for the others.
2. ``dispatch`` loads the message and the webhooks, skips messages from bots (no bot
   loops), system and deleted messages, and those no trigger word matches; it records
   one delivery per (webhook, message) — a unique row, so an event handled twice is sent
   once — and queues ``webhooks.deliver``.
3. ``deliver`` claims attempt N of the delivery (a conditional update to ``sending``: a
   job run twice sends once; a worker that died mid-attempt is taken over once its lease
   — the outbound timeout plus 30 s — has run out), POSTs through ``parley.outbound``
   (SSRF guard, no redirects, time and size limits) with ``X-Parley-Signature``
   (``signing``). A 2xx marks it delivered and resets the webhook's failure count;
   anything else queues attempt N+1 after ``PARLEY_WEBHOOK_RETRY_BASE_SECONDS`` × 2^(N-1) (at most an hour) until
   ``PARLEY_WEBHOOK_MAX_ATTEMPTS``; then the delivery is ``failed`` (dead-lettered, in the
   log) and the webhook's consecutive failures grow; at ``PARLEY_WEBHOOK_MAX_FAILURES``
   it is disabled until a manager enables it again.
4. A reply ``{"text": ...}`` is posted as the webhook's bot with ``client_msg_id``
   ``hook-<delivery id>``: a redelivered job posts it once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import ParleyError
from parley.fields import text_problem
from parley.ids import new_id
from parley.integrations.signing import SIGNATURE_HEADER, sign
from parley.integrations.webhooks import OUTGOING, matched_trigger, webhook_from_row
from parley.jobs.queue import Job, JobQueue
from parley.observability.metrics import WebhookMetrics
from parley.outbound import OutboundClient, OutboundError
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import Event
from parley.services.message_records import load_message
from parley.services.messages import Messages
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.integrations import webhook_deliveries, webhooks

log = logging.getLogger(__name__)

DISPATCH_JOB = "webhooks.dispatch"
DELIVER_JOB = "webhooks.deliver"
# How stale this node's idea of "which conversations have outgoing webhooks" may be: a
# webhook made on another node starts receiving within this.
HOOKED_TTL_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0
# A receiver's answer is read up to this size (a reply is one chat message).
MAX_REPLY_BYTES = 64 * 1024
PENDING, SENDING, RETRYING, DELIVERED, FAILED = "pending", "sending", "retrying", "delivered", "failed"
# An attempt still "sending" this long after it was claimed died with its worker (a node
# killed mid-request): a redelivered job may take it over. Past any outbound timeout.
LEASE_SLACK_SECONDS = 30.0


class DeliveryBusy(Exception):
    """Another worker is making this attempt right now: the job is retried later, when the
    attempt has finished (nothing to do) or its lease has run out (taken over)."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int
    retry_base_seconds: float
    max_failures: int

    def retry_delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1``."""
        return min(self.retry_base_seconds * 2.0 ** (attempt - 1), MAX_RETRY_SECONDS)


class OutgoingWebhooks:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        outbound: OutboundClient,
        messages: Messages,
        policy: DeliveryPolicy,
        urls: AttachmentUrls | None,
        metrics: WebhookMetrics,
    ) -> None:
        self._urls = urls  # the receiver gets signed attachment links, as a member would
        self._db = db
        self._metrics = metrics
        self._jobs = jobs
        self._outbound = outbound
        self._messages = messages
        self._policy = policy
        self._lease = timedelta(seconds=outbound.policy.timeout_seconds + LEASE_SLACK_SECONDS)
        self._hooked: frozenset[str] = frozenset()
        self._hooked_at = -HOOKED_TTL_SECONDS
        self._hooked_lock = asyncio.Lock()  # one refresh at a time; the others use its result
        self._changes = 0  # bumped by changed(): a refresh that overlapped one is not trusted

    def register(self, jobs: JobQueue) -> None:
        jobs.register(DISPATCH_JOB, self._dispatch_job)
        jobs.register(DELIVER_JOB, self._deliver_job)

    def changed(self, conversation_id: str) -> None:
        """A webhook of ``conversation_id`` changed here: re-read the set at next use."""
        self._changes += 1
        self._hooked_at = -HOOKED_TTL_SECONDS

    async def _hooked_conversations(self) -> frozenset[str]:
        if time.monotonic() - self._hooked_at < HOOKED_TTL_SECONDS:
            return self._hooked
        async with self._hooked_lock:
            if time.monotonic() - self._hooked_at < HOOKED_TTL_SECONDS:
                return self._hooked  # refreshed while this one waited
            changes = self._changes
            async with self._db.read() as conn:
                rows = await conn.execute(
                    select(webhooks.c.conversation_id)
                    .where(webhooks.c.kind == OUTGOING, webhooks.c.disabled_at.is_(None))
                    .distinct()
                )
                self._hooked = frozenset(row.conversation_id for row in rows)
            if changes == self._changes:  # else it may predate the change: read again next time
                self._hooked_at = time.monotonic()
            return self._hooked

    # --- 1. after a commit

    async def on_events(self, events: Sequence[Event]) -> None:
        created = [e for e in events if e.type == "message.created" and e.conversation_id]
        if not created:
            return
        hooked = await self._hooked_conversations()
        for event in created:
            if event.conversation_id not in hooked:
                continue
            message = event.data.get("message") or {}
            if message.get("kind") != "text" or message.get("ciphertext") is not None:
                continue
            try:
                await self._jobs.enqueue(DISPATCH_JOB, {"message_id": message["id"]})
            except Exception:  # the message is committed; only its webhooks miss it
                log.exception("could not queue a webhook dispatch", extra={"message_id": message["id"]})

    # --- 2. which webhooks get it

    async def _dispatch_job(self, job: Job) -> None:
        message_id = job.payload.get("message_id")
        if isinstance(message_id, str):
            await self.dispatch(message_id)

    async def dispatch(self, message_id: str) -> None:
        async with self._db.read() as conn:
            message = await load_message(conn, message_id, urls=self._urls)
            if message is None or message.deleted or message.kind != "text" or message.sender_id is None:
                return
            sender_is_bot = (
                await conn.execute(select(users.c.is_bot).where(users.c.id == message.sender_id))
            ).scalar_one_or_none()
            rows = (
                await conn.execute(
                    select(webhooks).where(
                        webhooks.c.conversation_id == message.conversation_id,
                        webhooks.c.kind == OUTGOING,
                        webhooks.c.disabled_at.is_(None),
                    )
                )
            ).all()
        if sender_is_bot is not False:
            return  # bots (webhook bots included) never trigger webhooks: no loops
        now = utcnow()
        for row in rows:
            hook = webhook_from_row(row)
            if matched_trigger(hook.triggers, message.content) is None:
                continue
            delivery_id = new_id()
            try:
                async with self._db.transaction() as conn:
                    await conn.execute(
                        insert(webhook_deliveries).values(
                            id=delivery_id,
                            webhook_id=hook.id,
                            message_id=message_id,
                            status=PENDING,
                            attempts=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                continue  # this (webhook, message) was dispatched already
            await self._jobs.enqueue(DELIVER_JOB, {"delivery_id": delivery_id, "attempt": 1})

    # --- 3. one attempt

    async def _deliver_job(self, job: Job) -> None:
        delivery_id, attempt = job.payload.get("delivery_id"), job.payload.get("attempt")
        if isinstance(delivery_id, str) and isinstance(attempt, int):
            await self.deliver(delivery_id, attempt)

    async def deliver(self, delivery_id: str, attempt: int) -> None:
        now = utcnow()
        async with self._db.transaction() as conn:
            if not await self._claim(conn, delivery_id, attempt, now):
                return
            row = (
                await conn.execute(
                    select(webhook_deliveries.c.message_id, webhooks)
                    .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                    .where(webhook_deliveries.c.id == delivery_id)
                )
            ).first()
        if row is None:
            return  # the webhook was deleted (its deliveries with it)
        if row.disabled_at is not None:
            await self._finish(delivery_id, row.id, FAILED, None, "the webhook is disabled", count=False)
            return
        payload = await self._payload(row, delivery_id)
        if payload is None:
            await self._finish(delivery_id, row.id, FAILED, None, "the message is gone", count=False)
            return
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(row.secret, body),
            "x-parley-event": "message.created",
            "x-parley-webhook-id": row.id,
            "x-parley-delivery-id": delivery_id,
        }
        try:
            response = await self._outbound.request(
                "POST", row.url, headers=headers, content=body, max_response_bytes=MAX_REPLY_BYTES
            )
        except OutboundError as exc:
            await self._failed(delivery_id, row.id, attempt, None, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - this attempt is claimed: record it, never strand it
            log.exception("webhook delivery crashed", extra={"delivery_id": delivery_id})
            await self._failed(delivery_id, row.id, attempt, None, f"{type(exc).__name__}")
            return
        if not 200 <= response.status < 300:
            await self._failed(delivery_id, row.id, attempt, response.status, f"answered {response.status}")
            return
        problem = await self._post_reply(row, delivery_id, response.body)
        await self._finish(delivery_id, row.id, DELIVERED, response.status, problem)

    async def _claim(self, conn: AsyncConnection, delivery_id: str, attempt: int, now: datetime) -> bool:
        """Take attempt ``attempt`` (one worker only; a job run twice sends once), or take
        over one whose worker died; ``DeliveryBusy`` while another worker is on it."""
        table = webhook_deliveries.c
        taken = await conn.execute(
            update(webhook_deliveries)
            .where(
                table.id == delivery_id,
                or_(
                    and_(table.attempts == attempt - 1, table.status.in_((PENDING, RETRYING))),
                    and_(table.attempts == attempt, table.status == SENDING, table.updated_at < now - self._lease),
                ),
            )
            .values(attempts=attempt, status=SENDING, updated_at=now)
        )
        if taken.rowcount == 1:
            return True
        current = (
            await conn.execute(select(table.status, table.attempts).where(table.id == delivery_id))
        ).first()
        if current is not None and current.status == SENDING and current.attempts == attempt:
            raise DeliveryBusy(delivery_id)
        return False  # done already, gone, or a later attempt has started

    async def _payload(self, row: Any, delivery_id: str) -> dict[str, Any] | None:
        async with self._db.read() as conn:
            message = await load_message(conn, row.message_id, urls=self._urls)
            if message is None or message.deleted:
                return None
            sender = (
                await conn.execute(
                    select(users.c.id, users.c.username, users.c.display_name, users.c.is_bot).where(
                        users.c.id == message.sender_id
                    )
                )
            ).first()
        hook = webhook_from_row(row)
        return {
            "event": "message.created",
            "webhook_id": hook.id,
            "delivery_id": delivery_id,
            "conversation_id": message.conversation_id,
            "trigger_word": matched_trigger(hook.triggers, message.content) or None,
            "message": message.to_public(),
            "sender": {
                "id": sender.id,
                "username": sender.username,
                "display_name": sender.display_name,
                "is_bot": sender.is_bot,
            }
            if sender is not None
            else None,
            "sent_at": isoformat(utcnow()),
        }

    async def _post_reply(self, row: Any, delivery_id: str, body: bytes) -> str | None:
        """Post the receiver's ``{text}`` answer as the webhook's bot; why not, or None."""
        if not body.strip():
            return None
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return "reply ignored: not JSON"
        text = answer.get("text") if isinstance(answer, dict) else None
        if not isinstance(text, str) or not text.strip():
            return None
        if text_problem(text) is not None:
            return "reply ignored: text holds NUL or unpaired surrogates"
        try:
            await self._messages.send(
                row.bot_user_id, row.conversation_id, text, client_msg_id=f"hook-{delivery_id}"
            )
        except ParleyError as exc:
            return f"reply refused: {exc.code}: {exc.message}"[:300]
        except Exception as exc:  # noqa: BLE001 - delivered all the same; the log says why
            log.exception("posting a webhook reply failed", extra={"delivery_id": delivery_id})
            return f"reply not posted: {type(exc).__name__}"
        return None

    # --- outcomes

    async def _failed(
        self, delivery_id: str, webhook_id: str, attempt: int, status: int | None, error: str
    ) -> None:
        if attempt < self._policy.max_attempts:
            self._metrics.attempts.labels("retried").inc()
            await self._finish(delivery_id, webhook_id, RETRYING, status, error)
            await self._jobs.enqueue(
                DELIVER_JOB,
                {"delivery_id": delivery_id, "attempt": attempt + 1},
                delay_seconds=self._policy.retry_delay(attempt),
            )
            return
        await self._finish(delivery_id, webhook_id, FAILED, status, error)

    async def _finish(
        self,
        delivery_id: str,
        webhook_id: str,
        status: str,
        response_status: int | None,
        error: str | None,
        *,
        count: bool = True,
    ) -> None:
        now = utcnow()
        async with self._db.transaction() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=status,
                    response_status=response_status,
                    error=error[:300] if error else None,
                    updated_at=now,
                )
            )
            if status == DELIVERED:
                self._metrics.attempts.labels("delivered").inc()
                await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(failures=0))
            elif status == FAILED and count:
                # Counted in SQL: concurrent failures of one webhook all count.
                await conn.execute(
                    update(webhooks).where(webhooks.c.id == webhook_id).values(failures=webhooks.c.failures + 1)
                )
                disabled = await conn.execute(
                    update(webhooks)
                    .where(
                        webhooks.c.id == webhook_id,
                        webhooks.c.failures >= self._policy.max_failures,
                        webhooks.c.disabled_at.is_(None),
                    )
                    .values(disabled_at=now)
                )
                self._metrics.attempts.labels("failed").inc()
                if disabled.rowcount == 1:
                    self._metrics.disabled.inc()
        if status == FAILED:
            log.warning("webhook delivery failed", extra={"webhook_id": webhook_id, "error": error})
