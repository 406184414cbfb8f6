"""The Python SDK (``parley.client``): what the CLI, the tests, the benchmarks and bots use.

- :class:`ParleyClient` — the whole REST API (DESIGN §2 "REST API") with automatic token
  refresh;
- :class:`RealtimeSession` — the ``/ws`` gateway (``docs/protocol.md``): reconnects with
  backoff, resumes through ``changes`` without losing or repeating a message, and marks
  delivery; events as an async iterator, calls as awaitables;
- :class:`Bot` — a bot framework on both: handlers by decorator (``parley.client.bot``).

::

    async with ParleyClient("http://127.0.0.1:8000") as client:
        await client.login("alice", password)
        async with RealtimeSession(client) as session:
            async for event in session:
                print(event.type, event.data)
"""

from parley.client.bot import Bot, Context
from parley.client.errors import (
    ApiError,
    CallError,
    ConnectionLost,
    ParleyClientError,
    ServerError,
    SessionClosed,
)
from parley.client.realtime import Backoff, RealtimeSession, SessionState
from parley.client.rest import ParleyClient
from parley.client.tokens import Tokens
from parley.client.tracker import RealtimeEvent

__all__ = [
    "ApiError",
    "Backoff",
    "Bot",
    "Context",
    "CallError",
    "ConnectionLost",
    "ParleyClient",
    "ParleyClientError",
    "RealtimeEvent",
    "RealtimeSession",
    "ServerError",
    "SessionClosed",
    "SessionState",
    "Tokens",
]
