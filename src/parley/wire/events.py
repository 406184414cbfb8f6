"""Every event type the server pushes, its payload, its audience and what its seq means.

One row per event in :data:`EVENTS`; a feature adding an event adds its member, its payload
and its row here, nowhere else (see the package docstring). Payloads are ``TypedDict``s: the
shape of ``data`` in ``{"op": "event", "type": ..., "data": ...}``. Objects that are the same
as in REST responses (a message, a conversation, a user) are JSON objects here; their shape
is the REST API's (``/api/v1/openapi.json``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

# typing_extensions' TypedDict: pydantic reads it on Python 3.11 to write the schema.
from typing_extensions import TypedDict

JSONObject = dict[str, Any]


class EventType(enum.StrEnum):
    MESSAGE_CREATED = "message.created"
    MESSAGE_UPDATED = "message.updated"
    MESSAGE_DELETED = "message.deleted"
    REACTION_ADDED = "reaction.added"
    REACTION_REMOVED = "reaction.removed"
    RECEIPT_DELIVERED = "receipt.delivered"
    RECEIPT_READ = "receipt.read"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONVERSATION_DELETED = "conversation.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    MEMBER_UPDATED = "member.updated"
    CONTACT_REQUESTED = "contact.requested"
    CONTACT_ACCEPTED = "contact.accepted"
    CONTACT_REMOVED = "contact.removed"
    SESSION_REVOKED = "session.revoked"
    CONVERSATION_SETTINGS_UPDATED = "conversation.settings.updated"
    USER_SETTINGS_UPDATED = "user.settings.updated"
    TYPING_STARTED = "typing.started"
    TYPING_STOPPED = "typing.stopped"
    PRESENCE_UPDATED = "presence.updated"
    USER_UPDATED = "user.updated"
    MESSAGES_EXPIRED = "messages.expired"
    EXPORT_UPDATED = "export.updated"
    REPORT_RESOLVED = "report.resolved"
    THREAD_UPDATED = "thread.updated"
    COMMAND_RESPONSE = "command.response"
    DEVICE_UPDATED = "device.updated"
    TO_DEVICE = "to_device"
    USER_ERASED = "user.erased"


class Seq(enum.StrEnum):
    """What an event's ``data.seq`` is, which decides what a resuming client does with it."""

    NONE = "none"  # no seq: never stored, never resumed
    # A position in the conversation's seq stream (the change took it): a client's cursor
    # moves by it, a gap is filled from the changes feed.
    STREAM = "stream"
    WATERMARK = "watermark"  # a member's receipt watermark, not a new conversation seq
    # The seq of the system message sent just before it: only that message.created moves
    # a cursor.
    SYSTEM_MESSAGE = "system_message"
    START = "start"  # the conversation's last_seq when it was created: track from there


# --- payloads


class MessagePayload(TypedDict):
    conversation_id: str
    seq: int
    message: JSONObject  # as REST returns it; a tombstone for message.deleted


class ReactionPayload(TypedDict):
    conversation_id: str
    seq: int
    message_id: str
    user_id: str
    emoji: str
    reactions: list[JSONObject]  # the message's complete reaction list after the change


class ReceiptPayload(TypedDict):
    conversation_id: str
    user_id: str
    seq: int


class ConversationCreatedPayload(TypedDict):
    conversation_id: str
    seq: int
    conversation: JSONObject  # as GET /conversations lists it


class ConversationUpdatedPayload(TypedDict):
    conversation_id: str
    seq: int
    member_count: int
    changes: JSONObject


class ConversationDeletedPayload(TypedDict):
    conversation_id: str
    actor_id: str


class MemberAddedPayload(TypedDict):
    conversation_id: str
    seq: int
    member_count: int
    user_ids: list[str]
    actor_id: str


class MemberRemovedPayload(MemberAddedPayload):
    new_owner_id: str | None


class MemberUpdatedPayload(MemberAddedPayload):
    role: str


class ContactPayload(TypedDict):
    actor_id: str
    user_ids: list[str]


class SessionRevokedPayload(TypedDict):
    user_id: str
    session_ids: list[str]
    reason: str  # logout | logout_all | refresh_reuse


class ConversationSettingsPayload(TypedDict):
    conversation_id: str
    notify: str | None
    muted_until: str | None


class UserSettingsPayload(TypedDict):
    notify_default: str
    email_digest: bool


class TypingStoppedPayload(TypedDict):
    conversation_id: str
    user_id: str


class TypingStartedPayload(TypingStoppedPayload):
    expires_in_ms: int


class PresencePayload(TypedDict):
    user_id: str
    status: str  # online | away | offline
    last_seen_at: str | None


class UserUpdatedPayload(TypedDict):
    user: JSONObject  # the public profile


class MessagesExpiredPayload(TypedDict):
    conversation_id: str
    # The conversation's last_seq when the sweep ran (takes no seq of its own): the changes
    # feed carries ``expired_through_seq`` for clients that were offline.
    seq: int
    expired_through_seq: int  # every message at or below it is gone (docs/lifecycle.md)


class ExportPayload(TypedDict):
    export: JSONObject  # as GET /api/v1/users/me/exports/{export_id} returns it


class ReportResolvedPayload(TypedDict):
    report: JSONObject  # the report as its reporter sees it (docs/accounts.md)


class ThreadStatePayload(TypedDict):
    root_id: str
    conversation_id: str
    following: bool
    last_read_seq: int
    unread_count: int


class CommandResponsePayload(TypedDict):
    conversation_id: str
    command: str  # the name, without the slash
    id: str  # the same id as in the REST answer: a client that gets both shows it once
    response_type: str  # "ephemeral" here (in-channel answers arrive as message.created)
    text: str
    message: JSONObject | None
    error: str | None


class DeviceUpdatedPayload(TypedDict):
    user_id: str
    device_id: str
    change: str  # "added", "updated" or "removed": an E2EE device list changed (docs/e2ee.md)


class ToDevicePayload(TypedDict):
    device_id: str  # the recipient device; the user's other sessions ignore it
    messages: list[JSONObject]  # pairwise ciphertexts; acknowledged with POST /api/v1/to-device/ack


class UserErasedPayload(TypedDict):
    user_id: str


@dataclass(frozen=True, slots=True)
class EventSpec:
    payload: type[Any]  # a TypedDict
    seq: Seq
    audience: str  # who receives it, for the schema and the docs
    # Never stored, never resumed, in no order against stored events (typing, presence).
    ephemeral: bool = False


_MEMBERS = "the conversation's members"
_MEMBERS_AND_TARGETS = "the conversation's members, the added or removed users included"
_BOTH = "both people"

EVENTS: dict[EventType, EventSpec] = {
    EventType.MESSAGE_CREATED: EventSpec(MessagePayload, Seq.STREAM, _MEMBERS),
    EventType.MESSAGE_UPDATED: EventSpec(MessagePayload, Seq.STREAM, _MEMBERS),
    EventType.MESSAGE_DELETED: EventSpec(MessagePayload, Seq.STREAM, _MEMBERS),
    EventType.REACTION_ADDED: EventSpec(ReactionPayload, Seq.STREAM, _MEMBERS),
    EventType.REACTION_REMOVED: EventSpec(ReactionPayload, Seq.STREAM, _MEMBERS),
    EventType.RECEIPT_DELIVERED: EventSpec(ReceiptPayload, Seq.WATERMARK, _MEMBERS),
    EventType.RECEIPT_READ: EventSpec(ReceiptPayload, Seq.WATERMARK, _MEMBERS),
    EventType.CONVERSATION_CREATED: EventSpec(ConversationCreatedPayload, Seq.START, _MEMBERS),
    EventType.CONVERSATION_UPDATED: EventSpec(
        ConversationUpdatedPayload, Seq.SYSTEM_MESSAGE, _MEMBERS
    ),
    EventType.CONVERSATION_DELETED: EventSpec(
        ConversationDeletedPayload, Seq.NONE, "the former members"
    ),
    EventType.MEMBER_ADDED: EventSpec(MemberAddedPayload, Seq.SYSTEM_MESSAGE, _MEMBERS_AND_TARGETS),
    EventType.MEMBER_REMOVED: EventSpec(
        MemberRemovedPayload, Seq.SYSTEM_MESSAGE, _MEMBERS_AND_TARGETS
    ),
    EventType.MEMBER_UPDATED: EventSpec(MemberUpdatedPayload, Seq.SYSTEM_MESSAGE, _MEMBERS),
    EventType.CONTACT_REQUESTED: EventSpec(ContactPayload, Seq.NONE, _BOTH),
    EventType.CONTACT_ACCEPTED: EventSpec(ContactPayload, Seq.NONE, _BOTH),
    EventType.CONTACT_REMOVED: EventSpec(ContactPayload, Seq.NONE, _BOTH),
    EventType.SESSION_REVOKED: EventSpec(
        SessionRevokedPayload, Seq.NONE, "the user's sessions (the revoked ones are closed 4001)"
    ),
    EventType.CONVERSATION_SETTINGS_UPDATED: EventSpec(
        ConversationSettingsPayload, Seq.NONE, "the member's own sessions"
    ),
    EventType.USER_SETTINGS_UPDATED: EventSpec(
        UserSettingsPayload, Seq.NONE, "the user's own sessions"
    ),
    EventType.TYPING_STARTED: EventSpec(TypingStartedPayload, Seq.NONE, _MEMBERS, ephemeral=True),
    EventType.TYPING_STOPPED: EventSpec(TypingStoppedPayload, Seq.NONE, _MEMBERS, ephemeral=True),
    EventType.PRESENCE_UPDATED: EventSpec(
        PresencePayload,
        Seq.NONE,
        "the presence audience (shared conversations and contacts, minus blocks) and the"
        " user's own sessions",
        ephemeral=True,
    ),
    EventType.USER_UPDATED: EventSpec(
        UserUpdatedPayload, Seq.NONE, "the user and everyone who shares a conversation or is a contact"
    ),
    EventType.MESSAGES_EXPIRED: EventSpec(MessagesExpiredPayload, Seq.NONE, _MEMBERS),
    EventType.EXPORT_UPDATED: EventSpec(ExportPayload, Seq.NONE, "the user's own sessions"),
    EventType.REPORT_RESOLVED: EventSpec(ReportResolvedPayload, Seq.NONE, "the reporter's own sessions"),
    EventType.THREAD_UPDATED: EventSpec(ThreadStatePayload, Seq.NONE, "the user's own sessions"),
    EventType.COMMAND_RESPONSE: EventSpec(CommandResponsePayload, Seq.NONE, "the caller's own sessions"),
    EventType.DEVICE_UPDATED: EventSpec(
        DeviceUpdatedPayload, Seq.NONE, "the user and everyone who shares a conversation with them"
    ),
    # Kept in the device's inbox until acknowledged, and pushed again on the next identify.
    EventType.TO_DEVICE: EventSpec(ToDevicePayload, Seq.NONE, "the recipient user's sessions"),
    # The end of an erasure (docs/lifecycle.md): its sessions are closed by then, so it
    # reaches none; a marker for the logs and the other nodes' listeners.
    EventType.USER_ERASED: EventSpec(UserErasedPayload, Seq.NONE, "the erased user's sessions (none left)"),
}

# Events whose ``data.seq`` is a position in the conversation's stream (resume, dedupe).
SEQ_EVENTS = frozenset(event for event, spec in EVENTS.items() if spec.seq is Seq.STREAM)
EPHEMERAL_EVENTS = frozenset(event for event, spec in EVENTS.items() if spec.ephemeral)
