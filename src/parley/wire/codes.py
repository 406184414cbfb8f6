"""Close codes and protocol error codes of ``/ws`` (DESIGN §2), each defined here once.

Domain errors keep their codes in ``parley.errors`` (the same codes REST answers with);
these are the codes only the socket has.
"""

from __future__ import annotations

import enum

from parley.errors import MalformedBody


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
    TOO_MANY_CONNECTIONS = 4029  # the user holds the most sockets a node allows: close some


class ErrorCode(enum.StrEnum):
    """Codes of protocol errors (domain errors keep their own codes from ``errors.py``)."""

    INVALID_JSON = MalformedBody.code
    INVALID_FRAME = "INVALID_FRAME"
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    NOT_IDENTIFIED = "NOT_IDENTIFIED"
    ALREADY_IDENTIFIED = "ALREADY_IDENTIFIED"
