"""Erasure of an account (DESIGN §6.4; right to erasure).

``DELETE /users/me`` (with the password) or ``DELETE /admin/users/{id}`` (site admins):

1. every session is revoked through ``Auth.revoke`` — sockets close with 4001 on every node;
2. the profile goes: display name "Deleted user", no password, no admin right, email
   address, push subscriptions, notification settings and ledger, contacts, requests and
   blocks (both ways), exports; the row stays, deactivated and marked ``erased_at``, so
   the username stays reserved and nobody can take it over to impersonate the old owner;
   everyone who knew them gets ``user.updated`` with that profile, as after a rename;
3. every file the user uploaded is marked for the attachment sweep, which deletes it
   from the media store (queued at once); the profile picture's files are deleted once
   the profile's erasure has committed;
4. the user leaves every group (ownership passes on, as when leaving); direct
   conversations keep them as the other side's history;
5. then, as a job (``erasure.content``: a heavy user's messages take a while): reactions
   go, and with ``PARLEY_ERASURE_MODE=erase`` (default) every message becomes a tombstone
   like a delete makes — text, mentions and search index entries gone, seq kept,
   ``message.deleted`` pushed; ``anonymise`` keeps them, shown as from "Deleted user".
   The job ends with a ``user.erased`` event (no session is left to receive it).

Audited: ``erasure.requested`` (by whom) with the profile's erasure, ``erasure.finished``
when the content job ends; a repeated erasure is recorded again.

Every step is idempotent and batched, so a crash part-way is finished by erasing again
(an admin can always do so). Logged and counted (``parley_erasures_total``).
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import delete, or_, select, update

from parley.clock import utcnow
from parley.errors import Forbidden, NotFound, RateLimited
from parley.jobs.queue import Job, JobQueue
from parley.lifecycle.exports import Exports
from parley.lifecycle.retention import require_site_admin
from parley.media.blobstore import BlobStore
from parley.observability.metrics import Metrics
from parley.security.passwords import PasswordHasher
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.access import bump_version
from parley.services.accounts import fetch_users
from parley.services.attachment_urls import AttachmentUrls
from parley.services.audience import read_acquaintances
from parley.services.audit import Action, write_entry
from parley.services.auth import Auth
from parley.services.avatars import delete_user_picture
from parley.services.conversations import Conversations
from parley.services.events import Event, EventSink
from parley.services.message_records import load_message
from parley.services.message_sending import changed_event
from parley.store.db import Database
from parley.store.tables.accounts import (
    NEXT_PROFILE_VERSION,
    password_resets,
    recovery_codes,
    totp_credentials,
    users,
)
from parley.store.tables.contacts import blocks, contacts
from parley.store.tables.conversations import conversations, members
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages, reactions
from parley.store.tables.notifications import email_addresses, notification_settings, notifications, push_subscriptions
from parley.wire.events import EventType

log = logging.getLogger(__name__)

ErasureMode = Literal["erase", "anonymise"]
DELETED_USER = "Deleted user"
# Not an Argon2 hash: no password ever verifies against it.
NO_PASSWORD = "!erased"
ATTACHMENT_SWEEP_JOB = "attachments.sweep"
CONTENT_JOB = "erasure.content"
ERASED_EVENT = EventType.USER_ERASED
BATCH = 200
# Password attempts on the erasure route, per user: a stolen access token must not turn it
# into a password oracle.
CONFIRM_RATE = Rate.per_window(5, 3600)


class Erasure:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        auth: Auth,
        conversations_service: Conversations,
        exports: Exports,
        events: EventSink,
        jobs: JobQueue,
        metrics: Metrics,
        blobs: BlobStore,
        *,
        mode: ErasureMode,
        urls: AttachmentUrls | None,
    ) -> None:
        self._urls = urls
        self._db = db
        self._hasher = hasher
        self._limiter = limiter
        self._auth = auth
        self._conversations = conversations_service
        self._exports = exports
        self._events = events
        self._jobs = jobs
        self._metrics = metrics
        self._blobs = blobs
        self.mode = mode

    async def erase_self(self, user_id: str, password: str) -> None:
        decision = await self._limiter.hit(f"erase:user:{user_id}", CONFIRM_RATE)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.password_hash).where(
                        users.c.id == user_id, users.c.erased_at.is_(None)
                    )
                )
            ).first()
        if not await self._hasher.verify(row.password_hash if row else None, password):
            raise Forbidden("The password is not correct", code="INVALID_PASSWORD")
        await self.erase(user_id, actor_id=user_id)

    async def erase_by_admin(self, admin_id: str, user_id: str) -> None:
        async with self._db.read() as conn:
            await require_site_admin(conn, admin_id)
            exists = (await conn.execute(select(users.c.id).where(users.c.id == user_id))).first()
        if exists is None:
            raise NotFound("No such user")
        await self.erase(user_id, actor_id=admin_id)

    async def erase(self, user_id: str, *, actor_id: str | None) -> None:
        """Everything that must hold when the request returns — no session, no profile, no
        files, out of every group — then the user's messages and reactions, which can be
        many, as a job (``erasure.content``; run here if it cannot be queued)."""
        await self._auth.revoke(user_id, reason="erased")
        # Read before the erasure drops their contacts: everyone who knew them sees
        # "Deleted user" at once, as a rename is seen.
        audience = await self._db.read_sync(read_acquaintances, user_id)
        picture = await self._erase_profile(user_id, actor_id)
        await self._announce_erased_profile(user_id, audience)
        if picture is not None:  # after the commit: nobody is served it from now on
            await delete_user_picture(self._blobs, user_id, picture)
        await self._exports.delete_for_user(user_id)
        await self._leave_groups(user_id)
        try:
            await self._jobs.enqueue(ATTACHMENT_SWEEP_JOB)
        except Exception:  # the periodic sweep gets there
            log.exception("could not queue an attachment sweep")
        self._metrics.lifecycle.erasures.inc()
        log.info(
            "account erased",
            extra={"user_id": user_id, "actor_id": actor_id, "mode": self.mode},
        )
        try:
            await self._jobs.enqueue(CONTENT_JOB, {"user_id": user_id})
        except Exception:
            log.exception("could not queue the erasure of messages; erasing them now")
            await self.erase_content(user_id)

    async def erase_content(self, user_id: str) -> None:
        """The user's reactions, and (``erase`` mode) messages. Idempotent: a retried or
        repeated run finds what is left. Runs after the revocation and after the user left
        the groups, so no send of theirs can commit after it."""
        await self._release_reactions(user_id)
        if self.mode == "erase":
            await self._erase_messages(user_id)
        async with self._db.transaction() as conn:
            await write_entry(
                conn, Action.ERASURE_FINISHED, target_user_id=user_id, details={"mode": self.mode}
            )
        # No session of the user is left to receive it: it marks the end for the logs,
        # the other nodes' listeners and the tests.
        await self._events.emit([Event(ERASED_EVENT, {"user_id": user_id}, user_ids=(user_id,))])
        log.info("account content erased", extra={"user_id": user_id, "mode": self.mode})

    async def run_content_job(self, job: Job) -> None:
        user_id = job.payload.get("user_id")
        if isinstance(user_id, str):
            await self.erase_content(user_id)

    async def _announce_erased_profile(self, user_id: str, audience: set[str]) -> None:
        async with self._db.read() as conn:
            erased = (await fetch_users(conn, {user_id})).get(user_id)
        if erased is not None and audience:
            await self._events.emit(
                [Event(EventType.USER_UPDATED, {"user": erased.to_public()}, user_ids=tuple(sorted(audience)))]
            )

    async def _erase_profile(self, user_id: str, actor_id: str | None) -> str | None:
        """The profile's erasure, in one transaction; the picture it had (its blobs go
        once this has committed)."""
        now = utcnow()
        async with self._db.transaction() as conn:
            picture: str | None = (
                await conn.execute(select(users.c.avatar_key).where(users.c.id == user_id))
            ).scalar()
            await write_entry(
                conn,
                Action.ERASURE_REQUESTED,
                actor_id=actor_id,
                target_user_id=user_id,
                details={"mode": self.mode, "by_admin": actor_id is not None and actor_id != user_id},
            )
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    display_name=DELETED_USER,
                    password_hash=NO_PASSWORD,
                    is_admin=False,
                    deactivated_at=now,
                    erased_at=now,
                    updated_at=now,
                    avatar_key=None,
                    profile_version=NEXT_PROFILE_VERSION,
                )
            )
            # Credentials too (2FA, recovery codes, reset links): an erased account must show
            # as having none in the admin console, and nothing may sign it in again.
            personal = (email_addresses, push_subscriptions, notification_settings, notifications)
            for table in (*personal, totp_credentials, recovery_codes, password_resets):
                await conn.execute(delete(table).where(table.c.user_id == user_id))
            await conn.execute(
                delete(contacts).where(
                    or_(contacts.c.requester_id == user_id, contacts.c.addressee_id == user_id)
                )
            )
            await conn.execute(
                delete(blocks).where(or_(blocks.c.blocker_id == user_id, blocks.c.blocked_id == user_id))
            )
            await conn.execute(
                update(attachments)
                .where(attachments.c.uploader_id == user_id, attachments.c.deleted_at.is_(None))
                .values(deleted_at=now)
            )
        return picture

    # Both walks below go through their table once, in key order from where the last batch
    # ended: there is no index by sender or reacting user (each would cost every send), so
    # a batch restarting from the beginning would read the whole table again each time.

    async def _release_reactions(self, user_id: str) -> None:
        after = ""
        while True:
            async with self._db.read() as conn:
                rows = list(
                    await conn.execute(
                        select(reactions.c.message_id, messages.c.conversation_id)
                        .join(messages, messages.c.id == reactions.c.message_id)
                        .where(reactions.c.user_id == user_id, reactions.c.message_id > after)
                        .group_by(reactions.c.message_id, messages.c.conversation_id)
                        .order_by(reactions.c.message_id)
                        .limit(BATCH)
                    )
                )
            if not rows:
                return
            await self._change_messages(
                [(r.conversation_id, r.message_id) for r in rows], user_id, tombstone=False
            )
            after = rows[-1].message_id

    async def _erase_messages(self, user_id: str) -> None:
        after = ""
        while True:
            async with self._db.read() as conn:
                rows = list(
                    await conn.execute(
                        select(messages.c.id, messages.c.conversation_id)
                        .where(
                            messages.c.sender_id == user_id,
                            messages.c.kind == "text",
                            messages.c.deleted_at.is_(None),
                            messages.c.id > after,
                        )
                        .order_by(messages.c.id)
                        .limit(BATCH)
                    )
                )
            if not rows:
                return
            await self._change_messages(
                [(r.conversation_id, r.id) for r in rows], user_id, tombstone=True
            )
            after = rows[-1].id

    async def _change_messages(
        self, targets: list[tuple[str, str]], user_id: str, *, tombstone: bool
    ) -> None:
        """One transaction per batch: each message takes a new version (like a delete or
        a reaction change does), then events go out after the commit."""
        now = utcnow()
        changed = []
        async with self._db.transaction() as conn:
            for conversation_id, message_id in sorted(targets):
                # A tombstone loses every reaction (as a delete does); otherwise only theirs.
                condition = [reactions.c.message_id == message_id]
                if not tombstone:
                    condition.append(reactions.c.user_id == user_id)
                await conn.execute(delete(reactions).where(*condition))
                values = (
                    {"content": "", "mentions": "[]", "deleted_at": now} if tombstone else {}
                )
                await bump_version(conn, conversation_id, message_id, now, **values)
                message = await load_message(conn, message_id, urls=self._urls)
                if message is not None:
                    changed.append(message)
        await self._events.emit(
            [changed_event(EventType.MESSAGE_DELETED if tombstone else EventType.MESSAGE_UPDATED, m) for m in changed]
        )

    async def _leave_groups(self, user_id: str) -> None:
        async with self._db.read() as conn:
            groups = [
                row.conversation_id
                for row in await conn.execute(
                    select(members.c.conversation_id)
                    .join(conversations, conversations.c.id == members.c.conversation_id)
                    .where(members.c.user_id == user_id, conversations.c.type == "group")
                )
            ]
        for conversation_id in groups:
            try:
                await self._conversations.remove_member(user_id, conversation_id, user_id)
            except NotFound:
                continue  # left or deleted meanwhile


def register_erasure_jobs(jobs: JobQueue, erasure: Erasure) -> None:
    jobs.register(CONTENT_JOB, erasure.run_content_job)
