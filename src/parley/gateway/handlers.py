"""Call handlers: one per method, params in, result dict out. They never see the socket.

Services return records; a handler turns its record into the ack's JSON (the edge
serialises, as the REST routers do).

Each handler calls the same service the matching REST route calls, so a change made over
the socket and one made over REST are the same change: same checks, same errors (raised
as :class:`~parley.errors.ParleyError` and turned into an ``error`` frame by the
connection), same events after commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from parley.errors import NotFound
from parley.gateway.ports import GatewayServices
from parley.gateway.presence import Presence
from parley.gateway.protocol import (
    CallFrame,
    CallParams,
    FrameReader,
    IdentifyFrame,
    MarkParams,
    MessageDeleteParams,
    MessageEditParams,
    MessageSendParams,
    PingFrame,
    PresenceParams,
    ReactionParams,
    TypingParams,
)
from parley.gateway.typing_indicators import TypingTracker
from parley.presence.base import PresenceStatus
from parley.services.access import CONVERSATION_NOT_FOUND
from parley.services.send_admission import SendResult
from parley.wire.json_text import JsonText, object_text


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling, and what their session may see."""

    user_id: str
    connection_id: str
    # Whether this session receives a conversation's events; ephemeral methods (typing)
    # use it instead of a database read — membership events keep it current.
    receives: Callable[[str], bool]


# The ack's data: a dict, or its JSON text when a part of it was written already.
Result = dict[str, Any] | JsonText
P = TypeVar("P", bound=CallParams)
Done = TypeVar("Done")


@dataclass(frozen=True, slots=True)
class Queued(Generic[Done]):
    """A pipelined call's work, queued: ``done`` resolves when it is (committed), and
    ``answer`` turns what it resolved to into the ack's data, at once (no await). A future
    and a function rather than a coroutine to await: the connection answers from the
    future's callback, with no task per call."""

    done: asyncio.Future[Done]
    answer: Callable[[Done], Result]

    def result(self) -> Result:
        """The ack's data once ``done`` is; raises what the work raised."""
        return self.answer(self.done.result())


@dataclass(frozen=True, slots=True)
class Method(Generic[P]):
    """One row of the method table: how the params are validated and who handles them."""

    params: type[P]
    handle: Callable[[Handlers, CallContext, P], Awaitable[Result]]
    # A pipelined method does its checks and queues its work when awaited, and returns
    # the work queued: the connection reads the next frame meanwhile.
    queue: Callable[[Handlers, CallContext, P], Awaitable[Queued[Any]]] | None = None


class Handlers:
    def __init__(self, services: GatewayServices, typing: TypingTracker, presence: Presence) -> None:
        self._services = services
        self._typing = typing
        self._presence = presence

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(METHODS)

    @staticmethod
    def read(text: str) -> IdentifyFrame | PingFrame | CallFrame:
        """One client text frame (a call's params read with it where they are valid), or
        ``BadFrame``."""
        return FRAMES.frame(text)

    @staticmethod
    def parse(frame: CallFrame) -> CallParams:
        """The call's params as its method's model, or ``BadFrame`` (unknown method, bad
        params) naming the call."""
        return FRAMES.params(frame)

    def is_pipelined(self, method: str) -> bool:
        spec = METHODS.get(method)
        return spec is not None and spec.queue is not None

    async def queue(self, context: CallContext, method: str, params: CallParams) -> Queued[Any]:
        """Start a pipelined ``method``: checks done and work queued in call order when this
        returns; its ``done`` resolves when the answer can be made."""
        queue = METHODS[method].queue
        assert queue is not None, f"{method} is not pipelined"
        return await queue(self, context, params)

    async def dispatch(self, context: CallContext, method: str, params: CallParams) -> Result:
        """Run ``method``; raises ``KeyError`` for a method the protocol does not know
        (:meth:`parse` rejects those first)."""
        return await METHODS[method].handle(self, context, params)

    # --- messages

    async def message_send(self, context: CallContext, params: MessageSendParams) -> Result:
        queued = await self.queue_message_send(context, params)
        return queued.answer(await queued.done)

    async def queue_message_send(
        self, context: CallContext, params: MessageSendParams
    ) -> Queued[SendResult]:
        committed = await self._services.messages.enqueue(
            context.user_id,
            params.conversation_id,
            params.content,
            client_msg_id=params.client_msg_id,
            reply_to_id=params.reply_to_id,
            attachment_ids=params.attachment_ids,
            thread_root_id=params.thread_root_id,
            thread_broadcast=params.thread_broadcast,
            ciphertext=params.ciphertext,
            e2ee=params.e2ee,
        )

        def answer(result: SendResult) -> Result:
            self._typing.forget(context.user_id, params.conversation_id)
            # The message's JSON text is the one its message.created frame spliced.
            message = result.message
            fields = {"message": message.to_public(), "created": result.created}
            return object_text(fields, {"message": message.public_text()})

        return Queued(committed, answer)

    async def message_edit(self, context: CallContext, params: MessageEditParams) -> Result:
        message = await self._services.messages.edit(
            context.user_id,
            params.message_id,
            params.content,
            ciphertext=params.ciphertext,
            e2ee=params.e2ee,
        )
        return {"message": message.to_public()}

    async def message_delete(self, context: CallContext, params: MessageDeleteParams) -> Result:
        message = await self._services.messages.delete(context.user_id, params.message_id)
        return {"message": message.to_public()}

    async def reaction_add(self, context: CallContext, params: ReactionParams) -> Result:
        message = await self._services.reactions.add(
            context.user_id, params.message_id, params.emoji
        )
        return {"message": message.to_public()}

    async def reaction_remove(self, context: CallContext, params: ReactionParams) -> Result:
        message = await self._services.reactions.remove(
            context.user_id, params.message_id, params.emoji
        )
        return {"message": message.to_public()}

    # --- ephemeral

    async def typing_start(self, context: CallContext, params: TypingParams) -> Result:
        self._check_receives(context, params.conversation_id)
        await self._typing.start(context.user_id, params.conversation_id)
        return {}

    async def typing_stop(self, context: CallContext, params: TypingParams) -> Result:
        self._check_receives(context, params.conversation_id)
        await self._typing.stop(context.user_id, params.conversation_id)
        return {}

    async def presence_set(self, context: CallContext, params: PresenceParams) -> Result:
        status = PresenceStatus(params.status)
        await self._presence.set_status(context.user_id, context.connection_id, status)
        return {"status": status.value}

    @staticmethod
    def _check_receives(context: CallContext, conversation_id: str) -> None:
        if not context.receives(conversation_id):
            raise NotFound(CONVERSATION_NOT_FOUND)

    # --- receipts

    async def read_mark(self, context: CallContext, params: MarkParams) -> Result:
        marked = await self._services.receipts.mark_read(
            context.user_id, params.conversation_id, params.seq
        )
        return marked.to_public()

    async def delivered_mark(self, context: CallContext, params: MarkParams) -> Result:
        marked = await self._services.receipts.mark_delivered(
            context.user_id, params.conversation_id, params.seq
        )
        return marked.to_public()


# The method table (DESIGN §2 "Methods"): a method exists when it has a row here, and its
# row is both its validation (``params``) and its dispatch. ``parley protocol-schema``
# writes it to docs/protocol.schema.json.
METHODS: dict[str, Method[Any]] = {
    "message.send": Method(
        MessageSendParams, Handlers.message_send, queue=Handlers.queue_message_send
    ),
    "message.edit": Method(MessageEditParams, Handlers.message_edit),
    "message.delete": Method(MessageDeleteParams, Handlers.message_delete),
    "reaction.add": Method(ReactionParams, Handlers.reaction_add),
    "reaction.remove": Method(ReactionParams, Handlers.reaction_remove),
    "typing.start": Method(TypingParams, Handlers.typing_start),
    "typing.stop": Method(TypingParams, Handlers.typing_stop),
    "read.mark": Method(MarkParams, Handlers.read_mark),
    "delivered.mark": Method(MarkParams, Handlers.delivered_mark),
    "presence.set": Method(PresenceParams, Handlers.presence_set),
}
FRAMES = FrameReader({name: method.params for name, method in METHODS.items()})
