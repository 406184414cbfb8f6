"""Resume bookkeeping, without I/O: per conversation, what the app has been given, which
events are duplicates, and when there is a gap to fill from ``changes``.

Stored events (``message.*``, ``reaction.*``) carry ``data.seq``, the conversation seq the
change took. A conversation's ``last_seq`` is the highest seq up to which the app has been
given everything. For each event:

- seq at or below the message's known version, or at or below ``last_seq`` → duplicate
  (it arrived through a fill already, or twice), dropped;
- seq = ``last_seq`` + 1 → delivered, ``last_seq`` moves;
- seq beyond that → a gap (a lost event, or events from two writers overtaking each other):
  the event is held, and the conversation is filled from ``changes?after_seq=last_seq``.
  Everything up to the fill's ``last_seq`` is then committed, so held events come out in
  order or turn out to be duplicates.

While a conversation fills, its other events are held too, so the app sees its changes in
order. Fill results become events marked ``replayed``: a message the app never had is
``message.created`` (possibly a tombstone), one it had is ``message.updated`` or
``message.deleted`` carrying the message's current state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parley.wire.events import EPHEMERAL_EVENTS, SEQ_EVENTS

# The protocol's sets (docs/protocol.schema.json), not restated here: events whose seq is a
# stream position, and ephemeral events — which never wait behind a fill: their order
# against stored events is moot.
STORED_TYPES: frozenset[str] = SEQ_EVENTS
UNORDERED_TYPES: frozenset[str] = EPHEMERAL_EVENTS
# Message versions remembered per conversation, for dropping stale duplicates.
MAX_VERSIONS = 5_000

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    type: str
    data: JSON
    # True when the SDK built it from the changes feed (after a gap or a reconnect).
    replayed: bool = False

    @property
    def conversation_id(self) -> str | None:
        value = self.data.get("conversation_id")
        return value if isinstance(value, str) else None

    @property
    def message(self) -> JSON | None:
        value = self.data.get("message")
        return value if isinstance(value, dict) else None


def _message_key(event: RealtimeEvent) -> tuple[str, int] | None:
    seq = event.data.get("seq")
    message = event.message
    message_id = message.get("id") if message is not None else event.data.get("message_id")
    if not isinstance(seq, int) or not isinstance(message_id, str):
        return None
    return message_id, seq


@dataclass
class ConversationStream:
    conversation_id: str
    last_seq: int
    filling: bool = False
    held: list[RealtimeEvent] = field(default_factory=list)
    versions: OrderedDict[str, int] = field(default_factory=OrderedDict)
    # Retention removed every message at or below this (docs/lifecycle.md).
    expired_through_seq: int = 0

    def remember(self, message_id: str, seq: int) -> None:
        self.versions[message_id] = max(seq, self.versions.get(message_id, -1))
        self.versions.move_to_end(message_id)
        while len(self.versions) > MAX_VERSIONS:
            self.versions.popitem(last=False)


@dataclass
class Outcome:
    deliver: list[RealtimeEvent] = field(default_factory=list)
    fill: list[str] = field(default_factory=list)  # conversations to fill now


class Tracker:
    def __init__(self, user_id: str, positions: Mapping[str, int] | None = None) -> None:
        self.user_id = user_id
        self._positions = dict(positions or {})
        self._streams: dict[str, ConversationStream] = {}
        self._readies = 0

    def position(self, conversation_id: str) -> int | None:
        stream = self._streams.get(conversation_id)
        return stream.last_seq if stream is not None else None

    def positions(self) -> dict[str, int]:
        return {cid: stream.last_seq for cid, stream in self._streams.items()}

    def is_filling(self, conversation_id: str) -> bool:
        stream = self._streams.get(conversation_id)
        return stream is not None and stream.filling

    # --- ready

    def on_ready(self, conversations: Sequence[JSON]) -> Outcome:
        """A (re)connection's ``ready``: fill every conversation that moved while we were
        away. On the first ready, conversations start where the caller's ``positions`` say,
        or at the server's ``last_seq`` (the app loads history itself)."""
        first = self._readies == 0
        self._readies += 1
        outcome = Outcome()
        listed: set[str] = set()
        for view in conversations:
            conversation_id, server_last = str(view["id"]), int(view["last_seq"])
            expired = int(view.get("expired_through_seq") or 0)
            listed.add(conversation_id)
            stream = self._streams.get(conversation_id)
            if stream is None:
                start = self._positions.get(conversation_id) if first else None
                stream = ConversationStream(
                    conversation_id, server_last if start is None else start
                )
                if start is None:
                    stream.expired_through_seq = expired  # history is loaded after this
                self._streams[conversation_id] = stream
                if not first:
                    # Added while we were away: say so, as the live event would have.
                    data = {
                        "conversation_id": conversation_id,
                        "seq": server_last,
                        "conversation": view,
                    }
                    outcome.deliver.append(
                        RealtimeEvent("conversation.created", data, replayed=True)
                    )
            # Retention removing messages moves no seq: a moved expired_through_seq also
            # calls for a fill, which announces it (``fill_done``).
            moved = expired > stream.expired_through_seq
            if server_last > stream.last_seq or stream.filling or moved:
                stream.filling = True
                outcome.fill.append(conversation_id)
        for gone in set(self._streams) - listed:
            del self._streams[gone]  # removed or deleted while we were away
        return outcome

    # --- live events

    def on_event(self, event: RealtimeEvent) -> Outcome:
        outcome = Outcome()
        conversation_id = event.conversation_id
        if conversation_id is None or event.type in UNORDERED_TYPES:
            outcome.deliver.append(event)
            return outcome
        stream = self._streams.get(conversation_id)
        if stream is None:
            stream = self._start(conversation_id, event)
        if stream.filling:
            stream.held.append(event)
            return outcome
        self._accept(stream, event, outcome)
        self._after(event)
        return outcome

    def _start(self, conversation_id: str, event: RealtimeEvent) -> ConversationStream:
        """A conversation we learn about from its first event (created, or we were added)."""
        seq = event.data.get("seq")
        seq = seq if isinstance(seq, int) else 0
        # A stored event is the first we should see; anything else states a position.
        start = seq - 1 if event.type in STORED_TYPES else seq
        stream = ConversationStream(conversation_id, max(start, 0))
        self._streams[conversation_id] = stream
        return stream

    def _accept(self, stream: ConversationStream, event: RealtimeEvent, outcome: Outcome) -> None:
        if event.type == "messages.expired":
            through = event.data.get("expired_through_seq")
            if isinstance(through, int):
                stream.expired_through_seq = max(stream.expired_through_seq, through)
        if event.type not in STORED_TYPES:
            outcome.deliver.append(event)
            return
        key = _message_key(event)
        if key is None:
            outcome.deliver.append(event)
            return
        message_id, seq = key
        if seq <= stream.versions.get(message_id, -1) or seq <= stream.last_seq:
            return  # a duplicate, or older than what the app already has
        if seq > stream.last_seq + 1:
            stream.held.append(event)
            stream.filling = True
            outcome.fill.append(stream.conversation_id)
            return
        stream.remember(message_id, seq)
        stream.last_seq = seq
        outcome.deliver.append(event)

    def _after(self, event: RealtimeEvent) -> None:
        """Events that end our view of a conversation (delivered first, then forgotten)."""
        conversation_id = event.conversation_id
        if conversation_id is None:
            return
        removed = event.type == "member.removed" and self.user_id in event.data.get("user_ids", ())
        if removed or event.type == "conversation.deleted":
            self._streams.pop(conversation_id, None)

    # --- fills

    def fill_from(self, conversation_id: str) -> int | None:
        stream = self._streams.get(conversation_id)
        return stream.last_seq if stream is not None else None

    def fill_done(
        self,
        conversation_id: str,
        messages: Sequence[JSON],
        last_seq: int,
        *,
        expired_through_seq: int = 0,
    ) -> Outcome:
        """Apply a completed fill (all pages): retention's removals (a ``messages.expired``
        event when ``expired_through_seq`` moved), its messages, then the held events."""
        outcome = Outcome()
        stream = self._streams.get(conversation_id)
        if stream is None:
            return outcome
        if expired_through_seq > stream.expired_through_seq:
            stream.expired_through_seq = expired_through_seq
            data = {
                "conversation_id": conversation_id,
                "seq": max(stream.last_seq, last_seq),
                "expired_through_seq": expired_through_seq,
            }
            outcome.deliver.append(RealtimeEvent("messages.expired", data, replayed=True))
        before = stream.last_seq
        for record in sorted(messages, key=lambda m: int(m["version_seq"])):
            message_id, version = str(record["id"]), int(record["version_seq"])
            if version <= stream.versions.get(message_id, -1) or version <= before:
                continue
            known = message_id in stream.versions or int(record["seq"]) <= before
            if not known:
                kind = "message.created"
            else:
                kind = "message.deleted" if record.get("deleted") else "message.updated"
            data = {"conversation_id": conversation_id, "seq": version, "message": record}
            outcome.deliver.append(RealtimeEvent(kind, data, replayed=True))
            stream.remember(message_id, version)
        stream.last_seq = max(before, last_seq)
        stream.filling = False
        held, stream.held = stream.held, []
        for index, event in enumerate(held):
            if stream.filling:
                stream.held.extend(held[index:])
                break
            self._accept(stream, event, outcome)
            self._after(event)
            if conversation_id not in self._streams:
                break
        return outcome

    def forget(self, conversation_id: str) -> None:
        """The conversation is no longer ours (a fill answered 404)."""
        self._streams.pop(conversation_id, None)
