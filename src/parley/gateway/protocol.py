"""The wire protocol of ``/ws``: every frame, every method's params, every close code.

This module is the whole contract between the gateway and its clients (``docs/protocol.md``
describes it for humans). Client frames are pydantic models, parsed strictly: a string
where a number belongs is an error, not a coercion. Server frames are TypedDicts, encoded
once with :func:`encode`.

Parsing never raises anything but :class:`BadFrame`, which carries the ``ref`` of the call
when it could be read, so the error frame can name the call it answers.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from parley import fields
from parley.errors import FieldProblem, MalformedBody, ParleyError, ValidationFailed

MAX_REF_CHARS = 64
# Generous: the service enforces the real limit with a proper error; this only stops a
# client from making the gateway validate a megabyte string before the service says no.
MAX_CONTENT_CHARS = 200_000


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses (DESIGN §2) and what a client should do."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down: reconnect, maybe to another node
    FRAME_TOO_LARGE = 1009  # a client frame exceeded max_frame_bytes: fix the client
    INTERNAL_ERROR = 1011  # a server bug: reconnect with backoff
    AUTHENTICATION_FAILED = 4001  # bad token / revoked session: log in again
    TOKEN_EXPIRED = 4002  # refresh the access token, then reconnect
    NOT_IDENTIFIED = 4003  # no identify within the deadline: reconnect and identify
    RATE_LIMITED = 4008  # kept calling after RATE_LIMITED errors: back off, reconnect
    TOO_SLOW = 4009  # the outgoing queue overflowed: reconnect and resume via changes
    HEARTBEAT_TIMEOUT = 4010  # nothing heard for two heartbeat intervals: reconnect
    RESYNC = 4011  # the node may have missed events (its bus reconnected): reconnect, resume


class ErrorCode:
    """Codes of protocol errors (domain errors keep their own codes from ``errors.py``)."""

    INVALID_JSON = MalformedBody.code
    INVALID_FRAME = "INVALID_FRAME"
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    NOT_IDENTIFIED = "NOT_IDENTIFIED"
    ALREADY_IDENTIFIED = "ALREADY_IDENTIFIED"


class BadFrame(Exception):
    """A frame that cannot be acted on; ``ref`` is the call's ref when it was readable."""

    def __init__(self, error: ParleyError, ref: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.ref = ref


# --- client frames


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        return fields.check_texts(value)  # no NUL, no unpaired surrogate


class IdentifyFrame(_Strict):
    op: Literal["identify"]
    token: str = Field(min_length=1, max_length=4096)


class PingFrame(_Strict):
    op: Literal["ping"]


class CallFrame(_Strict):
    op: Literal["call"]
    ref: str = Field(min_length=1, max_length=MAX_REF_CHARS)
    method: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


ClientFrame = Annotated[IdentifyFrame | PingFrame | CallFrame, Field(discriminator="op")]
_CLIENT_FRAME: TypeAdapter[IdentifyFrame | PingFrame | CallFrame] = TypeAdapter(ClientFrame)
CLIENT_OPS = ("identify", "ping", "call")


# --- call params, one model per method


class CallParams(_Strict):
    """Base of every method's params."""


Id = fields.Id  # one shape for every id, at every edge


class MessageSendParams(CallParams):
    conversation_id: Id
    # Optional when attachments carry the message (as over REST).
    content: str = Field(default="", max_length=MAX_CONTENT_CHARS)
    client_msg_id: str | None = Field(default=None, max_length=200)
    reply_to_id: Id | None = None
    attachment_ids: list[Id] = Field(default_factory=list, max_length=100)
    # An encrypted message (DESIGN §6.1): ciphertext and its envelope instead of content.
    ciphertext: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)
    e2ee: dict[str, Any] | None = None


class MessageEditParams(CallParams):
    message_id: Id
    content: str = Field(default="", max_length=MAX_CONTENT_CHARS)
    ciphertext: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)
    e2ee: dict[str, Any] | None = None


class MessageDeleteParams(CallParams):
    message_id: Id


class ReactionParams(CallParams):
    message_id: Id
    emoji: str = Field(min_length=1, max_length=64)


class TypingParams(CallParams):
    conversation_id: Id


class MarkParams(CallParams):
    conversation_id: Id
    seq: fields.Seq


class PresenceParams(CallParams):
    status: Literal["online", "away"]


METHOD_PARAMS: dict[str, type[CallParams]] = {
    "message.send": MessageSendParams,
    "message.edit": MessageEditParams,
    "message.delete": MessageDeleteParams,
    "reaction.add": ReactionParams,
    "reaction.remove": ReactionParams,
    "typing.start": TypingParams,
    "typing.stop": TypingParams,
    "read.mark": MarkParams,
    "delivered.mark": MarkParams,
    "presence.set": PresenceParams,
}


# --- server frames


class PresenceData(TypedDict):
    user_id: str
    status: str  # "online" | "away" | "offline"
    last_seen_at: str | None


class ReadyData(TypedDict):
    user: dict[str, Any]
    session_id: str
    heartbeat_interval_ms: int
    max_frame_bytes: int
    conversations: list[dict[str, Any]]
    presences: list[PresenceData]


class ReadyFrame(TypedDict):
    op: Literal["ready"]
    data: ReadyData


class PongFrame(TypedDict):
    op: Literal["pong"]


class AckFrame(TypedDict):
    op: Literal["ack"]
    ref: str
    data: dict[str, Any]


class ErrorFrame(TypedDict):
    op: Literal["error"]
    ref: str | None
    error: dict[str, Any]


class EventFrame(TypedDict):
    op: Literal["event"]
    type: str
    data: dict[str, Any]


ServerFrame = ReadyFrame | PongFrame | AckFrame | ErrorFrame | EventFrame


def encode(frame: ServerFrame) -> str:
    # default=str: timestamps are already strings; this only guards a stray Decimal or id.
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=str)


def event_frame(event_type: str, data: dict[str, Any]) -> str:
    return encode(EventFrame(op="event", type=event_type, data=data))


def ack_frame(ref: str, data: dict[str, Any]) -> str:
    return encode(AckFrame(op="ack", ref=ref, data=data))


def error_frame(ref: str | None, error: ParleyError) -> str:
    return encode(ErrorFrame(op="error", ref=ref, error=error.to_dict()))


PONG = encode(PongFrame(op="pong"))


# --- parsing


def _problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"] if part not in CLIENT_OPS)
        name = f"{prefix}{location}" if location else (prefix.rstrip(".") or "frame")
        message = "is required" if item["type"] == "missing" else str(item["msg"])
        problems.append(FieldProblem(name, message))
    return problems


def _invalid(message: str, problems: list[FieldProblem] | None = None) -> ValidationFailed:
    return ValidationFailed(message, details=problems, code=ErrorCode.INVALID_FRAME)


def parse_frame(text: str) -> IdentifyFrame | PingFrame | CallFrame:
    """One client text frame, or :class:`BadFrame`."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise BadFrame(MalformedBody("The frame is not valid JSON")) from None
    if not isinstance(raw, dict):
        raise BadFrame(_invalid("A frame is a JSON object with an 'op'"))
    ref = raw.get("ref")
    readable_ref = ref if isinstance(ref, str) and 0 < len(ref) <= MAX_REF_CHARS else None
    op = raw.get("op")
    if op not in CLIENT_OPS:
        problem = FieldProblem("op", f"must be one of {', '.join(CLIENT_OPS)}")
        raise BadFrame(_invalid(f"Unknown op {op!r}", [problem]), readable_ref)
    try:
        return _CLIENT_FRAME.validate_python(raw)
    except ValidationError as exc:
        problems = _problems(exc)
        summary = f"{problems[0].field}: {problems[0].message}"
        raise BadFrame(_invalid(summary, problems), readable_ref) from None


def parse_params(frame: CallFrame) -> CallParams:
    """The call's params as the method's model, or :class:`BadFrame` naming the call."""
    model = METHOD_PARAMS.get(frame.method)
    if model is None:
        error = ValidationFailed(
            f"Unknown method {frame.method!r}",
            details=[FieldProblem("method", f"must be one of {', '.join(METHOD_PARAMS)}")],
            code=ErrorCode.UNKNOWN_METHOD,
        )
        raise BadFrame(error, frame.ref)
    try:
        return model.model_validate(frame.params)
    except ValidationError as exc:
        problems = _problems(exc, prefix="params.")
        raise BadFrame(
            ValidationFailed(f"{problems[0].field}: {problems[0].message}", details=problems),
            frame.ref,
        ) from None


def protocol_error(code: str, message: str) -> ParleyError:
    """A client error with a protocol ``code`` (``NOT_IDENTIFIED``, ...)."""
    return ValidationFailed(message, code=code)
