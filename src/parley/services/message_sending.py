"""Sending messages: validation, rate limits and group commit (DESIGN §2 "Persistence").

A send is checked for what needs no database (text, ids, counts, rate limits) and queued;
the batcher then writes every queued send in ONE transaction (``message_batch``) that also
does all the checks that need the database — membership, blocks, reply targets, mentions,
uploads. Every caller is answered only after the commit; events go out after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from parley.clock import utcnow
from parley.errors import IdempotencyConflict, RateLimited, ValidationFailed
from parley.observability.metrics import Metrics
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.attachment_errors import AttachmentAlreadyUsed
from parley.services.attachment_urls import AttachmentUrls
from parley.services.batching import Batcher
from parley.services.e2ee_messages import check_encrypted
from parley.services.events import Event, EventSink
from parley.services.markup import check_client_msg_id, check_content, mentioned_usernames
from parley.services.message_batch import BatchWritten, write_batch
from parley.services.message_records import Message
from parley.services.send_admission import SendRequest, SendResult
from parley.store.db import Database
from parley.wire.events import EventType
from parley.wire.json_text import object_text

__all__ = [
    "MessageSender",
    "SendLimits",
    "SendRequest",
    "SendResult",
    "batch_events",
    "changed_event",
    "created_event",
]


@dataclass(frozen=True, slots=True)
class SendLimits:
    max_chars: int
    user_rate: Rate
    conversation_rate: Rate
    group_commit_window_seconds: float
    group_commit_max_batch: int
    max_attachments: int = 10
    # An encrypted message's ciphertext, in base64url characters (DESIGN §6.1).
    max_ciphertext_chars: int = 60_000


def created_event(message: Message) -> Event:
    data = {"conversation_id": message.conversation_id, "seq": message.seq, "message": message.to_public()}
    return Event(
        EventType.MESSAGE_CREATED,
        data,
        conversation_id=message.conversation_id,
        # The message's text is written once: the sender's ack splices the same.
        data_text=object_text(data, {"message": message.public_text()}),
    )


def changed_event(event_type: EventType, message: Message) -> Event:
    """``message.updated`` / ``message.deleted``: the seq is the change's (version_seq)."""
    return Event(
        event_type,
        {
            "conversation_id": message.conversation_id,
            "seq": message.version_seq,
            "message": message.to_public(),
        },
        conversation_id=message.conversation_id,
    )


def batch_events(written: BatchWritten) -> list[Event]:
    """The events of a batch in seq order per conversation: the replies, then each thread
    root whose summary they changed (its new version_seq follows them)."""
    events = [(m.conversation_id, m.seq, created_event(m)) for m in written.created]
    events += [(m.conversation_id, m.version_seq, changed_event(EventType.MESSAGE_UPDATED, m)) for m in written.roots]
    return [event for _, _, event in sorted(events, key=lambda e: (e[0], e[1]))]


class MessageSender:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        limiter: RateLimiter,
        limits: SendLimits,
        metrics: Metrics,
        urls: AttachmentUrls | None,
    ) -> None:
        self._db = db
        self._urls = urls  # signs the attachment URLs of the messages it returns
        self._events = events
        self._limiter = limiter
        self._limits = limits
        self._metrics = metrics
        self._batcher: Batcher[SendRequest, SendResult] = Batcher(
            self._write_batch,
            window_seconds=limits.group_commit_window_seconds,
            max_batch=limits.group_commit_max_batch,
        )

    async def close(self) -> None:
        """Write what is queued, refuse new sends (graceful shutdown)."""
        await self._batcher.close()

    async def send(
        self,
        sender_id: str,
        conversation_id: str,
        content: str,
        *,
        client_msg_id: str | None = None,
        reply_to_id: str | None = None,
        attachment_ids: Sequence[str] = (),
        thread_root_id: str | None = None,
        thread_broadcast: bool = False,
        ciphertext: str | None = None,
        e2ee: object = None,
    ) -> SendResult:
        committed = await self.enqueue(
            sender_id,
            conversation_id,
            content,
            client_msg_id=client_msg_id,
            reply_to_id=reply_to_id,
            attachment_ids=attachment_ids,
            thread_root_id=thread_root_id,
            thread_broadcast=thread_broadcast,
            ciphertext=ciphertext,
            e2ee=e2ee,
        )
        return await committed

    async def enqueue(
        self,
        sender_id: str,
        conversation_id: str,
        content: str,
        *,
        client_msg_id: str | None = None,
        reply_to_id: str | None = None,
        attachment_ids: Sequence[str] = (),
        thread_root_id: str | None = None,
        thread_broadcast: bool = False,
        ciphertext: str | None = None,
        e2ee: object = None,
    ) -> asyncio.Future[SendResult]:
        """Check and queue a send; the future returned resolves once it has committed.
        Raises for what needs no database (text, ids, counts, rate limits). Sends queued one
        after another commit in that order — a connection queues its next send before the
        last one has committed, and the order holds."""
        files = tuple(attachment_ids)
        if len(files) > self._limits.max_attachments:
            raise ValidationFailed.field(
                "attachment_ids", f"at most {self._limits.max_attachments} attachments per message"
            )
        if len(set(files)) != len(files):
            raise ValidationFailed.field("attachment_ids", "must not repeat an id")
        if thread_broadcast and thread_root_id is None:
            raise ValidationFailed.field("thread_broadcast", "needs a thread_root_id")
        sealed = check_encrypted(
            content, ciphertext, e2ee, max_chars=self._limits.max_ciphertext_chars
        )
        if sealed is None:
            text = check_content(content, max_chars=self._limits.max_chars, allow_empty=bool(files))
        else:
            text = ""  # the server never sees an encrypted message's text, nor its mentions
        request = SendRequest(
            sender_id=sender_id,
            conversation_id=conversation_id,
            content=text,
            client_msg_id=check_client_msg_id(client_msg_id),
            reply_to_id=reply_to_id,
            mention_names=frozenset(mentioned_usernames(text)),
            attachment_ids=files,
            thread_root_id=thread_root_id,
            thread_broadcast=thread_broadcast,
            ciphertext=sealed.ciphertext if sealed else None,
            e2ee=sealed.e2ee if sealed else None,
        )
        return await self.enqueue_request(request)

    async def enqueue_request(self, request: SendRequest) -> asyncio.Future[SendResult]:
        """Queue a checked request (after the rate limits): ``enqueue`` and forwards."""
        decision = await self._limiter.hit_many(
            (
                (f"send:user:{request.sender_id}", self._limits.user_rate),
                (f"send:conversation:{request.conversation_id}", self._limits.conversation_rate),
            )
        )
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "You are sending messages too fast")
        return self._batcher.enqueue(request)

    # --- the batch

    async def _write_batch(self, batch: Sequence[SendRequest]) -> list[SendResult | BaseException]:
        """Commit, then emit. A batch that fails as a whole is split by the batcher until
        the request at fault is alone; only then is its failure its outcome."""
        try:
            written = await self._commit(batch)
        except IntegrityError:
            if len(batch) > 1:
                raise
            # A concurrent writer (another node) took this client_msg_id first.
            conflict = IdempotencyConflict("Retry: a concurrent send raced this one")
            written = BatchWritten([conflict], [], [])
        except AttachmentAlreadyUsed as exc:
            if len(batch) > 1:
                raise
            written = BatchWritten([exc], [], [])  # claimed by a concurrent send
        if written.created:
            self._metrics.messages_sent.inc(len(written.created))
            self._metrics.group_commit_batch.observe(len(written.created))
            await self._events.emit(batch_events(written))
        return written.outcomes

    async def _commit(self, batch: Sequence[SendRequest]) -> BatchWritten:
        return await self._db.write(write_batch, batch, utcnow(), self._urls)
