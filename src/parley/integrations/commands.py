"""Slash commands (DESIGN §6.6): ``/name args`` typed in the composer.

Built-ins, handled here: ``/me <action>`` (posts the action in italics), ``/shrug [text]``,
``/mute`` (mutes the conversation for the caller), ``/invite @user`` (adds them; admins).

Custom commands are registered site-wide (site admins) or for one conversation (its
admins) with a URL. Invoking one POSTs ``{command, text, conversation_id, user, ...}`` to
it through ``parley.outbound`` (SSRF guard, limits), signed like outgoing webhooks
(``X-Parley-Signature`` with the command's secret). The endpoint answers
``{"text": ..., "response_type": "ephemeral" | "in_channel"}`` (Slack's shape; ephemeral is
the default): an in-channel answer is posted as the caller (as Mattermost does), an
ephemeral one is shown only to the caller — the REST answer, and a ``command.response``
event to the caller's sessions only. A command endpoint that fails or answers nonsense
gives the caller an ephemeral error, never a server error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from parley.clock import isoformat, utcnow
from parley.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from parley.fields import text_problem
from parley.ids import new_id
from parley.integrations.signing import SIGNATURE_HEADER, new_secret, sign
from parley.integrations.webhooks import clean_target_url
from parley.outbound import OutboundClient, OutboundError
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.access import membership, require_admin
from parley.services.accounts import Accounts
from parley.services.conversations import Conversations
from parley.services.events import Event, EventSink
from parley.services.messages import Messages
from parley.services.notification_settings import FOREVER_WORD, NotificationSettings
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.integrations import commands
from parley.wire.events import EventType

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_INVOCATION = re.compile(r"^/([A-Za-z0-9][A-Za-z0-9_-]{0,31})(?:\s+(.*))?$", re.DOTALL)
BUILTINS: dict[str, str] = {
    "me": "Post an action: /me waves",
    "shrug": "Append ¯\\_(ツ)_/¯ to your message",
    "mute": "Mute notifications of this conversation",
    "invite": "Add someone to this conversation: /invite @username",
}
SHRUG = "¯\\_(ツ)_/¯"
EPHEMERAL = "ephemeral"
IN_CHANNEL = "in_channel"
RESPONSE_EVENT = EventType.COMMAND_RESPONSE
# Custom commands call out to other servers: a user may run this many, then one a second.
COMMAND_RATE = Rate(per_second=1.0, burst=10)
MAX_DESCRIPTION = 200
MAX_ANSWER_BYTES = 64 * 1024
MAX_ANSWER_CHARS = 10_000
SITE = ""  # the scope_key of site-wide commands


class UnknownCommand(ValidationFailed):
    code = "UNKNOWN_COMMAND"
    default_message = "There is no such command here"


class CommandTaken(Conflict):
    code = "COMMAND_TAKEN"
    default_message = "A command of this name exists here already"


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    name: str
    conversation_id: str | None
    url: str
    description: str
    created_by: str | None
    created_at: datetime

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "conversation_id": self.conversation_id,
            "url": self.url,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": isoformat(self.created_at),
        }


def _command(row: Any) -> Command:
    return Command(row.id, row.name, row.conversation_id, row.url, row.description, row.created_by, row.created_at)


@dataclass(frozen=True, slots=True)
class CommandResult:
    response_type: str
    text: str
    message: dict[str, Any] | None = None  # what was posted, for in-channel answers
    error: str | None = None
    # Names this answer in the REST reply and the command.response event alike, so a
    # client that gets both shows it once.
    id: str = field(default_factory=new_id)

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "response_type": self.response_type,
            "text": self.text,
            "message": self.message,
            "error": self.error,
        }


def parse_invocation(text: str) -> tuple[str, str]:
    match = _INVOCATION.fullmatch(text.strip())
    if match is None:
        raise ValidationFailed.field("text", "must be /name followed by arguments")
    return match.group(1).lower(), (match.group(2) or "").strip()


class Commands:
    def __init__(
        self,
        db: Database,
        accounts: Accounts,
        conversations: Conversations,
        messages: Messages,
        settings: NotificationSettings,
        events: EventSink,
        outbound: OutboundClient,
        limiter: RateLimiter,
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._conversations = conversations
        self._messages = messages
        self._settings = settings
        self._events = events
        self._outbound = outbound
        self._limiter = limiter

    # --- registering

    async def register(
        self,
        caller_id: str,
        name: str,
        url: str,
        *,
        conversation_id: str | None = None,
        description: str = "",
    ) -> tuple[Command, str]:
        key = name.strip().lstrip("/").lower()
        if not NAME.fullmatch(key):
            raise ValidationFailed.field("name", "1-32 characters of a-z, 0-9, _ and -")
        if key in BUILTINS:
            raise ValidationFailed.field("name", f"/{key} is a built-in command")
        if len(description) > MAX_DESCRIPTION:
            raise ValidationFailed.field("description", f"at most {MAX_DESCRIPTION} characters")
        target = clean_target_url(url, self._outbound.policy)
        secret = new_secret()
        command_id = new_id()
        now = utcnow()
        try:
            async with self._db.transaction() as conn:
                if conversation_id is None:
                    await _require_site_admin(conn, caller_id)
                else:
                    require_admin(await membership(conn, conversation_id, caller_id))
                await conn.execute(
                    insert(commands).values(
                        id=command_id,
                        name=key,
                        scope_key=conversation_id or SITE,
                        conversation_id=conversation_id,
                        url=target,
                        secret=secret,
                        description=description.strip(),
                        created_by=caller_id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            raise CommandTaken() from None
        return Command(command_id, key, conversation_id, target, description.strip(), caller_id, now), secret

    async def available(self, caller_id: str, conversation_id: str | None) -> list[dict[str, Any]]:
        """What the composer offers: built-ins, site-wide commands, and the conversation's."""
        async with self._db.read() as conn:
            scopes = [SITE]
            if conversation_id is not None:
                await membership(conn, conversation_id, caller_id)
                scopes.append(conversation_id)
            rows = await conn.execute(
                select(commands).where(commands.c.scope_key.in_(scopes)).order_by(commands.c.name)
            )
            custom = [_command(row) for row in rows]
        listed = [{"name": name, "description": text, "builtin": True} for name, text in BUILTINS.items()]
        listed += [c.to_public() | {"builtin": False} for c in custom]
        return sorted(listed, key=lambda entry: str(entry["name"]))

    async def delete(self, caller_id: str, command_id: str) -> None:
        async with self._db.transaction() as conn:
            row = (await conn.execute(select(commands).where(commands.c.id == command_id))).first()
            if row is None:
                raise NotFound("No such command")
            if row.conversation_id is None:
                await _require_site_admin(conn, caller_id, hide=True)
            else:
                try:
                    require_admin(await membership(conn, row.conversation_id, caller_id))
                except (NotFound, Forbidden):
                    raise NotFound("No such command") from None
            await conn.execute(delete(commands).where(commands.c.id == command_id))

    # --- running

    async def invoke(
        self, caller_id: str, conversation_id: str, text: str, *, thread_root_id: str | None = None
    ) -> CommandResult:
        """Run ``/name args``; ``thread_root_id``: run from a thread's reply box, so a posted
        answer is a reply in that thread."""
        name, args = parse_invocation(text)
        async with self._db.read() as conn:
            await membership(conn, conversation_id, caller_id)
            row = (
                await conn.execute(
                    select(commands)
                    .where(commands.c.name == name, commands.c.scope_key.in_([SITE, conversation_id]))
                    # The conversation's own command wins over a site-wide one of that name.
                    .order_by(commands.c.scope_key.desc())
                    .limit(1)
                )
            ).first()
        if name in BUILTINS:
            result = await self._builtin(caller_id, conversation_id, name, args, thread_root_id)
        elif row is not None:
            result = await self._custom(caller_id, conversation_id, row, args, thread_root_id)
        else:
            raise UnknownCommand(f"/{name} is not a command here", details=[])
        if result.response_type == EPHEMERAL:
            event = Event(
                RESPONSE_EVENT,
                {"conversation_id": conversation_id, "command": name, **result.to_public()},
                user_ids=(caller_id,),
            )
            await self._events.emit([event])
        return result

    async def _post(
        self, caller_id: str, conversation_id: str, content: str, thread_root_id: str | None
    ) -> CommandResult:
        sent = await self._messages.send(caller_id, conversation_id, content, thread_root_id=thread_root_id)
        return CommandResult(IN_CHANNEL, content, sent.message.to_public())

    async def _builtin(
        self, caller_id: str, conversation_id: str, name: str, args: str, thread_root_id: str | None
    ) -> CommandResult:
        if name == "me":
            if not args:
                raise ValidationFailed.field("text", "usage: /me <action>")
            return await self._post(caller_id, conversation_id, f"_{args}_", thread_root_id)
        if name == "shrug":
            return await self._post(caller_id, conversation_id, f"{args} {SHRUG}".strip(), thread_root_id)
        if name == "mute":
            await self._settings.update_conversation(caller_id, conversation_id, muted_until=FOREVER_WORD)
            return CommandResult(EPHEMERAL, "This conversation is muted. Unmute it in its settings.")
        # invite
        username = args.removeprefix("@").strip()
        if not username or " " in username:
            raise ValidationFailed.field("text", "usage: /invite @username")
        try:
            user = await self._accounts.get_by_username(username)
        except NotFound:
            raise ValidationFailed.field("text", f"no user @{username}") from None
        outcome = await self._conversations.add_members(caller_id, conversation_id, [user.id])
        said = f"@{user.username} joined." if outcome["added"] else f"@{user.username} is already here."
        return CommandResult(EPHEMERAL, said)

    async def _custom(
        self, caller_id: str, conversation_id: str, row: Any, args: str, thread_root_id: str | None
    ) -> CommandResult:
        decision = await self._limiter.hit(f"command:user:{caller_id}", COMMAND_RATE)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "You are running commands too fast")
        caller = await self._accounts.get(caller_id)
        payload = {
            "command": f"/{row.name}",
            "command_id": row.id,
            "text": args,
            "conversation_id": conversation_id,
            "thread_root_id": thread_root_id,
            "user": {"id": caller.id, "username": caller.username, "display_name": caller.display_name},
            "sent_at": isoformat(utcnow()),
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(row.secret, body)}
        try:
            response = await self._outbound.request(
                "POST", row.url, headers=headers, content=body, max_response_bytes=MAX_ANSWER_BYTES
            )
        except OutboundError as exc:
            return _failure(row.name, f"could not be reached ({exc})")
        if not 200 <= response.status < 300:
            return _failure(row.name, f"answered {response.status}")
        if not response.body.strip():
            return CommandResult(EPHEMERAL, "")  # done, nothing to say
        try:
            answer = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return _failure(row.name, "answered something that is not JSON")
        if not isinstance(answer, dict) or not isinstance(answer.get("text", ""), str):
            return _failure(row.name, "answered JSON without a text")
        text = str(answer.get("text", ""))
        if text_problem(text) is not None or len(text) > MAX_ANSWER_CHARS:
            return _failure(row.name, "answered a text that cannot be shown")
        if answer.get("response_type") == IN_CHANNEL and text.strip():
            try:
                return await self._post(caller_id, conversation_id, text, thread_root_id)
            except ValidationFailed as exc:
                return _failure(row.name, f"answered a message that cannot be posted ({exc.message})")
        return CommandResult(EPHEMERAL, text)


def _failure(name: str, why: str) -> CommandResult:
    return CommandResult(EPHEMERAL, f"/{name} {why}.", error="COMMAND_FAILED")


async def _require_site_admin(conn: Any, user_id: str, *, hide: bool = False) -> None:
    is_admin = (await conn.execute(select(users.c.is_admin).where(users.c.id == user_id))).scalar_one_or_none()
    if not is_admin:
        if hide:
            raise NotFound("No such command")
        raise Forbidden("Only site admins register site-wide commands")



