"""The wire protocol of ``/ws``: every frame and every method's params.

With ``parley.wire`` (event types and payloads, close and error codes) and the method table
of ``handlers`` this is the whole contract between the gateway and its clients
(``docs/protocol.md`` describes it for humans, ``docs/protocol.schema.json`` for machines).
Client frames are pydantic models, parsed strictly: a string where a number belongs is an
error, not a coercion. Server frames are TypedDicts, encoded once with :func:`encode`.

Parsing never raises anything but :class:`BadFrame`, which carries the ``ref`` of the call
when it could be read, so the error frame can name the call it answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring  # what dumps writes for a str
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)
from typing_extensions import TypedDict  # pydantic reads it on 3.11 to write the schema

from parley import fields
from parley.errors import FieldProblem, MalformedBody, ParleyError, ValidationFailed
from parley.wire.codes import ErrorCode
from parley.wire.events import PresencePayload
from parley.wire.json_text import JsonText, dumps

MAX_REF_CHARS = 64
# Generous: the service enforces the real limit with a proper error; this only stops a
# client from making the gateway validate a megabyte string before the service says no.
MAX_CONTENT_CHARS = 200_000


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
    thread_root_id: Id | None = None  # a reply in this message's thread (DESIGN §6.5)
    thread_broadcast: bool = False  # ... also shown in the conversation
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


# --- server frames


class ReadyData(TypedDict):
    user: dict[str, Any]
    session_id: str
    heartbeat_interval_ms: int
    max_frame_bytes: int
    conversations: list[dict[str, Any]]
    presences: list[PresencePayload]


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
    return dumps(frame)


def event_frame(event_type: str, data: dict[str, Any] | JsonText) -> str:
    """``data`` as a dict, or already written (spliced: the same frame, encoded once)."""
    if isinstance(data, JsonText):
        return f'{{"op":"event","type":{encode_basestring(event_type)},"data":{data.text}}}'
    return encode(EventFrame(op="event", type=event_type, data=data))


def ack_frame(ref: str, data: dict[str, Any] | JsonText) -> str:
    """``data`` as a dict, or already written (spliced: the same frame, encoded once)."""
    if isinstance(data, JsonText):
        return f'{{"op":"ack","ref":{encode_basestring(ref)},"data":{data.text}}}'
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


def parse_params(frame: CallFrame, models: Mapping[str, type[CallParams]]) -> CallParams:
    """The call's params as the method's model (``models``: the method table's params, see
    ``handlers.METHODS``), or :class:`BadFrame` naming the call."""
    model = models.get(frame.method)
    if model is None:
        error = ValidationFailed(
            f"Unknown method {frame.method!r}",
            details=[FieldProblem("method", f"must be one of {', '.join(models)}")],
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


class ReadCall(CallFrame):
    """A call frame read with its params, in one pass: each method has a subclass whose
    ``params`` is the method's model (made by :class:`FrameReader`). Not part of the wire's
    schema (that is :class:`CallFrame`); a frame of these never leaves the connection."""

    params: Any  # the method's CallParams model, in each subclass


def _read_call(method: str, params: type[CallParams]) -> type[ReadCall]:
    only_this: Any = Literal.__getitem__(method)
    return create_model(
        f"CallFrame[{method}]", __base__=ReadCall, method=(only_this, ...), params=(params, ...)
    )


class FrameReader:
    """Client frames of one method table (``handlers.METHODS``'s params), a call and its
    params read from the text in one pass — half the work of reading the frame, then the
    params. A frame that pass refuses is read again step by step (:func:`parse_frame`, then
    :func:`parse_params` after the identify check), so every error is the one the steps
    give: the one pass only ever takes what they would take, as they would take it."""

    def __init__(self, models: Mapping[str, type[CallParams]]) -> None:
        self._models = models
        # Types made at run time: written as the subscriptions they are, which a checker
        # cannot follow (it sees Literal[...] and Union[...] only with literal arguments).
        calls: Any = Union.__getitem__(
            tuple(_read_call(name, model) for name, model in models.items())
        )
        by_method: Any = Annotated[calls, Field(discriminator="method")]
        self._one_pass: TypeAdapter[IdentifyFrame | PingFrame | ReadCall] = TypeAdapter(
            Annotated[IdentifyFrame | PingFrame | by_method, Field(discriminator="op")]
        )

    def frame(self, text: str) -> IdentifyFrame | PingFrame | CallFrame:
        """One client text frame, or :class:`BadFrame`."""
        try:
            return self._one_pass.validate_json(text)
        except ValidationError:
            return parse_frame(text)

    def params(self, frame: CallFrame) -> CallParams:
        """The call's params as the method's model, or :class:`BadFrame` naming the call."""
        if isinstance(frame, ReadCall):
            params: CallParams = frame.params
            return params
        return parse_params(frame, self._models)


def protocol_error(code: str, message: str) -> ParleyError:
    """A client error with a protocol ``code`` (``NOT_IDENTIFIED``, ...)."""
    return ValidationFailed(message, code=code)
