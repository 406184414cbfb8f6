"""A small bot framework on the SDK (DESIGN §6.6): handlers by decorator, over one
:class:`RealtimeSession` — so a bot reconnects with backoff and resumes after an outage
without missing or repeating a message, as every SDK client does.

::

    bot = Bot("http://127.0.0.1:8000", token)   # a token from POST /api/v1/bots

    @bot.on_command("echo")          # "!echo hello" (or "@mybot echo hello")
    async def echo(ctx: Context) -> None:
        await ctx.reply(ctx.args or "(nothing to echo)")

    @bot.on_mention()                # a message that @mentions the bot
    async def hello(ctx: Context) -> None:
        await ctx.reply(f"hello {ctx.sender_id}")

    @bot.on_message()                # every other message from someone else
    async def seen(ctx: Context) -> None: ...

    await bot.run()                  # until bot.stop() or the token is revoked

Dispatch, per message from someone else (the bot's own messages, system messages and
deleted ones are skipped): the first matching command handler, else mention handlers,
else message handlers. Each message is handled once, even when the session replays it
after a reconnect. A handler that raises is logged; the bot carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from parley.client.errors import SessionClosed
from parley.client.realtime import Backoff, RealtimeSession
from parley.client.rest import ParleyClient
from parley.client.tokens import Tokens

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[["Context"], Awaitable[None]]
DEFAULT_PREFIX = "!"
# Message ids remembered to drop a replayed message already handled.
SEEN_MEMORY = 10_000


@dataclass(frozen=True, slots=True)
class Context:
    """One message for a handler, and ways to answer it."""

    bot: Bot
    message: JSON
    command: str | None = None  # the command name, for command handlers
    args: str = ""  # the text after the command

    @property
    def conversation_id(self) -> str:
        return str(self.message["conversation_id"])

    @property
    def content(self) -> str:
        return str(self.message.get("content") or "")

    @property
    def sender_id(self) -> str | None:
        sender = self.message.get("sender_id")
        return sender if isinstance(sender, str) else None

    async def send(self, content: str) -> JSON:
        """Post ``content`` in the message's conversation."""
        return await self.bot.send(self.conversation_id, content)

    async def reply(self, content: str) -> JSON:
        """Post ``content`` as a reply to the message."""
        return await self.bot.send(self.conversation_id, content, reply_to_id=str(self.message["id"]))


class Bot:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        backoff: Backoff | None = None,
        client: ParleyClient | None = None,
    ) -> None:
        self.client = client or ParleyClient(base_url, tokens=Tokens.bot(token), device_name="parley bot")
        self.prefix = prefix
        self.backoff = backoff or Backoff()
        self.session: RealtimeSession | None = None
        self.user: JSON | None = None
        self._commands: dict[str, Handler] = {}
        self._mentions: list[Handler] = []
        self._messages: list[Handler] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()  # set once connected (tests and supervisors wait on it)

    # --- registering handlers

    def on_command(self, name: str) -> Callable[[Handler], Handler]:
        key = name.lower().lstrip(self.prefix)

        def register(handler: Handler) -> Handler:
            self._commands[key] = handler
            return handler

        return register

    def on_mention(self) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._mentions.append(handler)
            return handler

        return register

    def on_message(self) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._messages.append(handler)
            return handler

        return register

    # --- running

    @property
    def user_id(self) -> str:
        if self.user is None:
            raise RuntimeError("the bot is not running")
        return str(self.user["id"])

    async def send(self, conversation_id: str, content: str, *, reply_to_id: str | None = None) -> JSON:
        """Send over the socket when connected (idempotent resends), else over REST."""
        if self.session is not None:
            with contextlib.suppress(SessionClosed):
                sent = await self.session.send_message(conversation_id, content, reply_to_id=reply_to_id)
                return dict(sent["message"])
        return await self.client.send_message(conversation_id, content, reply_to_id=reply_to_id)

    async def run(self) -> None:
        """Connect and handle messages until :meth:`stop`, or until the server refuses the
        token (revoked or rotated: ``SessionClosed`` is raised)."""
        self.user = await self.client.me()
        session = RealtimeSession(self.client, backoff=self.backoff)
        await session.start()
        self.session = session
        self.ready.set()
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                next_event = asyncio.create_task(session.next_event())
                done, _ = await asyncio.wait({next_event, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if next_event not in done:
                    next_event.cancel()
                    await asyncio.gather(next_event, return_exceptions=True)
                    break
                event = next_event.result()
                if event.type == "message.created" and event.message is not None:
                    self._dispatch(event.message)
        finally:
            stopping.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            await session.close()
            self.session = None
            await self.client.aclose()

    def stop(self) -> None:
        self._stopping.set()

    # --- dispatch

    def _first_time(self, message_id: str) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > SEEN_MEMORY:
            self._seen.popitem(last=False)
        return True

    def _dispatch(self, message: JSON) -> None:
        if (
            message.get("kind") != "text"
            or message.get("deleted")
            or message.get("sender_id") in (None, self.user_id)
            or not self._first_time(str(message.get("id")))
        ):
            return
        for handler, context in self._route(message):
            task = asyncio.create_task(self._call(handler, context), name="parley-bot-handler")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _route(self, message: JSON) -> list[tuple[Handler, Context]]:
        content = str(message.get("content") or "").strip()
        command = self._command_in(content)
        if command is not None:
            name, args = command
            handler = self._commands.get(name)
            if handler is not None:
                return [(handler, Context(self, message, name, args))]
        if self.user_id in (message.get("mentions") or []) and self._mentions:
            return [(handler, Context(self, message)) for handler in self._mentions]
        return [(handler, Context(self, message)) for handler in self._messages]

    def _command_in(self, content: str) -> tuple[str, str] | None:
        """``!name args``, or ``@botname name args``."""
        mention = f"@{self.user['username']}" if self.user else None
        if mention and content.lower().startswith(mention.lower()):
            content = self.prefix + content[len(mention) :].strip()
        if not content.startswith(self.prefix):
            return None
        match = re.match(r"(\S+)\s*(.*)", content[len(self.prefix) :], re.DOTALL)
        if match is None:
            return None
        return match.group(1).lower(), match.group(2).strip()

    async def _call(self, handler: Handler, context: Context) -> None:
        try:
            await handler(context)
        except Exception:  # one broken handler never stops the bot
            log.exception("bot handler failed", extra={"message_id": context.message.get("id")})
