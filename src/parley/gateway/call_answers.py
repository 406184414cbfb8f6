"""Answers to a connection's calls: a pipelined call waiting for its answer, and the error
frame's error for a call that failed (a Parley error as it is, a backend outage as
"unavailable, retry", a bug as a 500 — logged, the connection kept)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parley.errors import ParleyError
from parley.gateway.handlers import Queued

log = logging.getLogger("parley.gateway")


def error_for_failure(
    exc: Exception, method: str, unavailable: Callable[[BaseException], ParleyError | None]
) -> ParleyError:
    """What to answer a call whose work raised ``exc`` with."""
    if isinstance(exc, ParleyError):
        if exc.status >= 500:
            log.error("gateway call failed", exc_info=exc, extra={"method": method})
        return exc
    down = unavailable(exc)
    if down is not None:  # the database is unreachable: the client retries
        log.warning(
            "gateway call failed: backend unavailable",
            extra={"method": method, "error": f"{type(exc).__name__}: {exc}"},
        )
        return down
    # A bug: answer like REST answers a 500, keep the connection.
    log.exception("gateway call failed", exc_info=exc, extra={"method": method})
    return ParleyError()


@dataclass(frozen=True, slots=True)
class PendingAnswer:
    """A pipelined call waiting for its answer: its work queued, or why it was refused."""

    ref: str
    method: str
    work: Queued[Any] | Exception

    @property
    def ready(self) -> bool:
        return isinstance(self.work, Exception) or self.work.done.done()

    def outcome(self) -> Any:
        """The ack's data, or raises what to answer with an error instead."""
        if isinstance(self.work, Exception):
            raise self.work
        return self.work.result()
