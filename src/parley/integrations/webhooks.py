"""Webhooks of a conversation (DESIGN §6.6): managing them, and incoming ones posting.

Each webhook posts as a bot that is a member of its conversation: its own bot (made with
the webhook, ``kind`` 'webhook', no token) or a bot of the creator's named by ``bot_id``.
Only the conversation's owner and admins manage its webhooks (groups only: a direct
conversation has exactly its two people).

- **Incoming**: ``POST /hooks/{id}/{secret}`` with ``{text}`` (or a Slack-shaped payload)
  posts ``text`` as the bot. The secret is 256 random bits shown once in the URL and kept
  as a SHA-256 hash, compared in constant time; rotating it gives a new URL. Each webhook
  is rate limited (``PARLEY_WEBHOOK_RATE_PER_MINUTE`` / ``_BURST``).
- **Outgoing**: a URL (checked by ``parley.outbound`` at once, and at every delivery) and a
  signing secret; ``triggers`` (words) narrow which messages are sent. Delivery is
  ``deliveries``' work.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import NotFound, RateLimited, ValidationFailed
from parley.ids import new_id
from parley.integrations.bots import BOT, WEBHOOK_BOT, insert_bot_user
from parley.integrations.signing import new_secret
from parley.outbound import OutboundPolicy, OutboundRefused, check_url
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.access import membership, require_admin
from parley.services.accounts import clean_display_name
from parley.services.conversations import Conversations
from parley.services.message_records import Message
from parley.services.messages import Messages
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.integrations import bots, webhook_deliveries, webhooks

INCOMING = "incoming"
OUTGOING = "outgoing"
WEBHOOK_NOT_FOUND = "No such webhook"
MAX_TRIGGERS = 10
MAX_TRIGGER_CHARS = 32
MAX_URL_CHARS = 2048
DELIVERY_LOG_PAGE = 50
_TRIGGER = re.compile(r"^\S{1,32}$")


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    conversation_id: str
    kind: str
    bot_id: str
    created_by: str | None
    name: str
    url: str | None
    triggers: tuple[str, ...]
    failures: int
    disabled_at: datetime | None
    created_at: datetime

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def to_public(self) -> dict[str, Any]:
        public: dict[str, Any] = {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "name": self.name,
            "bot_id": self.bot_id,
            "created_by": self.created_by,
            "enabled": self.enabled,
            "created_at": isoformat(self.created_at),
        }
        if self.kind == OUTGOING:
            public |= {
                "url": self.url,
                "triggers": list(self.triggers),
                "failures": self.failures,
                "disabled_at": isoformat(self.disabled_at) if self.disabled_at else None,
            }
        return public


def webhook_from_row(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        conversation_id=row.conversation_id,
        kind=row.kind,
        bot_id=row.bot_user_id,
        created_by=row.created_by,
        name=row.name,
        url=row.url,
        triggers=tuple(json.loads(row.triggers)),
        failures=row.failures,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
    )


@dataclass(frozen=True, slots=True)
class Created:
    """A webhook just made or re-keyed, with what is shown only now."""

    webhook: Webhook
    secret: str  # incoming: the URL's secret; outgoing: the signing secret

    def to_public(self, hooks_base_url: str) -> dict[str, Any]:
        public = self.webhook.to_public()
        if self.webhook.kind == INCOMING:
            path = hook_path(self.webhook.id, self.secret)
            return public | {"path": path, "url": hooks_base_url.rstrip("/") + path}
        return public | {"secret": self.secret}


def hook_path(webhook_id: str, secret: str) -> str:
    return f"/hooks/{webhook_id}/{secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def clean_triggers(raw: list[str] | None) -> list[str]:
    words = [word.strip().lower() for word in raw or []]
    if len(words) > MAX_TRIGGERS:
        raise ValidationFailed.field("triggers", f"at most {MAX_TRIGGERS} words")
    for word in words:
        if not _TRIGGER.fullmatch(word):
            raise ValidationFailed.field("triggers", f"each a word of 1-{MAX_TRIGGER_CHARS} characters, no spaces")
    return list(dict.fromkeys(words))


def clean_target_url(raw: str, policy: OutboundPolicy) -> str:
    """An outgoing URL Parley may call: http(s), no credentials, no refused literal address
    (host names are checked again at every delivery, when they are resolved)."""
    if len(raw) > MAX_URL_CHARS:
        raise ValidationFailed.field("url", f"must be at most {MAX_URL_CHARS} characters")
    try:
        return str(check_url(raw.strip(), policy))
    except OutboundRefused as exc:
        raise ValidationFailed.field("url", str(exc)) from None


def clean_name(raw: str | None, default: str) -> str:
    """The webhook's name (its bot's display name); errors name the ``name`` field."""
    if not raw:
        return default
    try:
        return clean_display_name(raw)
    except ValidationFailed as exc:
        raise ValidationFailed.field("name", exc.details[0].message if exc.details else exc.message) from None


def matched_trigger(triggers: tuple[str, ...], content: str) -> str | None:
    """The trigger word the message starts with ("" when every message matches), or None."""
    if not triggers:
        return ""
    first = content.strip().split(maxsplit=1)
    word = first[0].lower() if first else ""
    return word if word in triggers else None


class Webhooks:
    def __init__(
        self,
        db: Database,
        conversations: Conversations,
        messages: Messages,
        limiter: RateLimiter,
        *,
        policy: OutboundPolicy,
        rate: Rate,
    ) -> None:
        self._db = db
        self._conversations = conversations
        self._messages = messages
        self._limiter = limiter
        self._policy = policy
        self._rate = rate
        # Called with a conversation id when its outgoing webhooks change (deliveries'
        # cache of hooked conversations).
        self.on_change: list[Any] = []

    # --- managing

    async def create(
        self,
        caller_id: str,
        conversation_id: str,
        kind: str,
        *,
        name: str | None = None,
        bot_id: str | None = None,
        url: str | None = None,
        triggers: list[str] | None = None,
    ) -> Created:
        if kind == OUTGOING:
            if url is None:
                raise ValidationFailed.field("url", "an outgoing webhook needs a url")
            target: str | None = clean_target_url(url, self._policy)
            words = clean_triggers(triggers)
        else:
            if url is not None or triggers is not None:
                field = "url" if url is not None else "triggers"
                raise ValidationFailed.field(field, "only outgoing webhooks have one")
            target, words = None, []
        label = clean_name(name, "Webhook")
        secret = secrets.token_urlsafe(32) if kind == INCOMING else new_secret()
        webhook_id = new_id()
        now = utcnow()
        async with self._db.transaction() as conn:
            require_admin(await membership(conn, conversation_id, caller_id))
            if bot_id is None:
                username = f"hook-{webhook_id[-10:].lower()}"
                poster = await insert_bot_user(conn, caller_id, username, label, WEBHOOK_BOT, now)
            else:
                poster = await _own_bot(conn, caller_id, bot_id)
            await conn.execute(
                insert(webhooks).values(
                    id=webhook_id,
                    conversation_id=conversation_id,
                    kind=kind,
                    bot_user_id=poster,
                    created_by=caller_id,
                    name=label,
                    secret_hash=hash_secret(secret) if kind == INCOMING else None,
                    url=target,
                    secret=secret if kind == OUTGOING else None,
                    triggers=json.dumps(words),
                    failures=0,
                    created_at=now,
                )
            )
        try:
            # The bot joins like any member (its arrival is announced to the conversation).
            await self._conversations.add_members(caller_id, conversation_id, [poster])
        except BaseException:
            async with self._db.transaction() as conn:
                await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
                if bot_id is None:  # its own bot never joined: retire it
                    await conn.execute(update(users).where(users.c.id == poster).values(deactivated_at=now))
            raise
        self._changed(conversation_id)
        return Created(await self.get(caller_id, conversation_id, webhook_id), secret)

    async def list(self, caller_id: str, conversation_id: str) -> list[Webhook]:
        async with self._db.read() as conn:
            require_admin(await membership(conn, conversation_id, caller_id))
            rows = await conn.execute(
                select(webhooks)
                .where(webhooks.c.conversation_id == conversation_id)
                .order_by(webhooks.c.created_at, webhooks.c.id)
            )
            return [webhook_from_row(row) for row in rows]

    async def get(self, caller_id: str, conversation_id: str, webhook_id: str) -> Webhook:
        async with self._db.read() as conn:
            return await _managed(conn, caller_id, conversation_id, webhook_id)

    async def update(
        self,
        caller_id: str,
        conversation_id: str,
        webhook_id: str,
        *,
        enabled: bool | None = None,
        url: str | None = None,
        triggers: builtins.list[str] | None = None,
        name: str | None = None,
    ) -> Webhook:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = clean_name(name, "Webhook")
        async with self._db.transaction() as conn:
            hook = await _managed(conn, caller_id, conversation_id, webhook_id)
            if (url is not None or triggers is not None) and hook.kind != OUTGOING:
                field_name = "url" if url is not None else "triggers"
                raise ValidationFailed.field(field_name, "only outgoing webhooks have one")
            if url is not None:
                values["url"] = clean_target_url(url, self._policy)
            if triggers is not None:
                values["triggers"] = json.dumps(clean_triggers(triggers))
            if enabled is True:
                values |= {"disabled_at": None, "failures": 0}
            elif enabled is False and hook.enabled:
                values["disabled_at"] = utcnow()
            if values:
                await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
        self._changed(conversation_id)
        return await self.get(caller_id, conversation_id, webhook_id)

    async def rotate_secret(self, caller_id: str, conversation_id: str, webhook_id: str) -> Created:
        """A new secret: an incoming webhook's old URL stops at once; an outgoing one's
        receiver must take the new signing secret."""
        async with self._db.transaction() as conn:
            hook = await _managed(conn, caller_id, conversation_id, webhook_id)
            if hook.kind == INCOMING:
                secret = secrets.token_urlsafe(32)
                values = {"secret_hash": hash_secret(secret)}
            else:
                secret = new_secret()
                values = {"secret": secret}
            await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
        return Created(hook, secret)

    async def delete(self, caller_id: str, conversation_id: str, webhook_id: str) -> None:
        """Delete the webhook; its own bot leaves the conversation and is deactivated (its
        messages stay, from a bot that no longer posts)."""
        async with self._db.transaction() as conn:
            hook = await _managed(conn, caller_id, conversation_id, webhook_id)
            await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
            own = (
                await conn.execute(
                    select(bots.c.kind).where(bots.c.user_id == hook.bot_id)
                )
            ).scalar_one_or_none() == WEBHOOK_BOT
        if own:
            with contextlib.suppress(NotFound):  # already removed by hand
                await self._conversations.remove_member(caller_id, conversation_id, hook.bot_id)
            async with self._db.transaction() as conn:
                now = utcnow()
                await conn.execute(
                    update(users).where(users.c.id == hook.bot_id).values(deactivated_at=now, updated_at=now)
                )
        self._changed(conversation_id)

    async def deliveries(
        self, caller_id: str, conversation_id: str, webhook_id: str
    ) -> builtins.list[dict[str, Any]]:
        """The newest deliveries of an outgoing webhook (the log its managers see)."""
        async with self._db.read() as conn:
            await _managed(conn, caller_id, conversation_id, webhook_id)
            rows = await conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc())
                .limit(DELIVERY_LOG_PAGE)
            )
            return [
                {
                    "id": row.id,
                    "message_id": row.message_id,
                    "status": row.status,
                    "attempts": row.attempts,
                    "response_status": row.response_status,
                    "error": row.error,
                    "created_at": isoformat(row.created_at),
                    "updated_at": isoformat(row.updated_at),
                }
                for row in rows
            ]

    def _changed(self, conversation_id: str) -> None:
        for listener in self.on_change:
            listener(conversation_id)

    # --- incoming

    async def post_incoming(self, webhook_id: str, secret: str, text: str) -> Message:
        """Post ``text`` as the webhook's bot. A wrong id or secret is ``NotFound`` (the
        same answer for both: the URL is the credential)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.kind == INCOMING)
                )
            ).first()
        expected = row.secret_hash if row is not None and row.secret_hash else hash_secret("")
        if row is None or not hmac.compare_digest(expected, hash_secret(secret)):
            raise NotFound(WEBHOOK_NOT_FOUND)
        if row.disabled_at is not None:
            raise NotFound("This webhook is disabled")
        decision = await self._limiter.hit(f"webhook:{webhook_id}", self._rate)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "This webhook is posting too fast")
        result = await self._messages.send(row.bot_user_id, row.conversation_id, text)
        return result.message


async def _managed(conn: AsyncConnection, caller_id: str, conversation_id: str, webhook_id: str) -> Webhook:
    require_admin(await membership(conn, conversation_id, caller_id))
    row = (
        await conn.execute(
            select(webhooks).where(
                webhooks.c.id == webhook_id, webhooks.c.conversation_id == conversation_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return webhook_from_row(row)


async def _own_bot(conn: AsyncConnection, caller_id: str, bot_id: str) -> str:
    found = (
        await conn.execute(
            select(bots.c.user_id)
            .join(users, users.c.id == bots.c.user_id)
            .where(
                bots.c.user_id == bot_id,
                bots.c.owner_id == caller_id,
                bots.c.kind == BOT,
                users.c.deactivated_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise ValidationFailed.field("bot_id", "not one of your bots")
    return str(found)
