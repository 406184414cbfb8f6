"""One JSON object per log line, so logs can be shipped and queried without parsing."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from parley.clock import isoformat, utcnow

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": isoformat(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# The websockets library under uvicorn logs "connection open" and "connection closed" for
# every socket with nothing else in them (uvicorn's own "[accepted]" line names the client;
# the gateway's "gateway session closed" says who, for how long and why). A reconnect storm
# of thousands wrote them all, a JSON line each, on the event loop.
_EMPTY_SOCKET_LINES = frozenset({"connection open", "connection closed"})


def _not_an_empty_socket_line(record: logging.LogRecord) -> bool:
    return record.msg not in _EMPTY_SOCKET_LINES


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate Parley's request log.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    error_log = logging.getLogger("uvicorn.error")
    if _not_an_empty_socket_line not in error_log.filters:
        error_log.addFilter(_not_an_empty_socket_line)
