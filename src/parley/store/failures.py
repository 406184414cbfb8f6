"""Telling "the database cannot be reached right now" apart from a bug.

A request that fails because PostgreSQL is down, restarting or unreachable is answered
with 503 ``UNAVAILABLE`` (REST) or an ``error`` frame with that code (the socket): the
client retries — a resend of ``message.send`` under its ``client_msg_id`` never
duplicates. Its transaction was rolled back, so nothing is half-written; the pool
(``pool_pre_ping`` on PostgreSQL) replaces the dead connections by itself once the
database answers again.

What counts, wherever it sits in the exception's chain (SQLAlchemy wraps driver errors):

- a connection SQLAlchemy invalidated (``DBAPIError.connection_invalidated``, e.g.
  "connection was closed in the middle of operation");
- socket errors: refused, reset, aborted, broken pipe, timed out, unknown host
  (``ConnectionError``, ``TimeoutError``, ``socket.gaierror``) — a connect to a database
  that is down raises these bare;
- PostgreSQL's connection classes (08: connection exception; 57: operator intervention —
  shutting down, starting up, canceled; 53: out of connections or resources);
- a pool that had no free connection within its timeout.

Not counted: a full disk or any other ``OSError`` (a real failure, 500), SQL errors.
"""

from __future__ import annotations

import socket

from asyncpg import exceptions as pg
from sqlalchemy import exc as sa

from parley.errors import Unavailable

UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again"

_DRIVER_CLASSES: tuple[type[BaseException], ...] = (
    pg.PostgresConnectionError,
    pg.OperatorInterventionError,
    pg.InsufficientResourcesError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    sa.DisconnectionError,
    sa.TimeoutError,  # the pool's "QueuePool limit ... timed out"
)


# The exception types a connectivity failure surfaces as, for registering handlers.
FAILURE_TYPES: tuple[type[Exception], ...] = (sa.SQLAlchemyError, pg.PostgresError, OSError)


def is_unavailable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _DRIVER_CLASSES):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def unavailable(exc: BaseException) -> Unavailable | None:
    """The ``Unavailable`` error to answer with, when ``exc`` is a connectivity failure."""
    return Unavailable(UNAVAILABLE_MESSAGE) if is_unavailable(exc) else None
