"""One JSON object per log line, so logs can be shipped and queried without parsing."""

from __future__ import annotations

import json
import logging
import logging.config
from typing import Any

from parley.clock import isoformat, utcnow

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


# uvicorn's copy of its message with terminal colour codes in it: noise in a JSON line.
_DROPPED_EXTRAS = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": isoformat(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, with --workers N
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_") and key not in _DROPPED_EXTRAS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# A socket is logged once, when it ends: the gateway's "gateway session closed" says who,
# from where, for how long and why — as an HTTP request is logged once, with its response.
# The lines the servers below write for every socket say less and cost the event loop a JSON
# line each: the websockets library's "connection open" / "connection closed" (nothing in
# them) and uvicorn's "[accepted]" naming the client (7.7 % of the loop's time while 10,000
# sockets connected and identified: docs/benchmarks.md, round six). Refusals stay.
_PER_SOCKET_LINES = frozenset({"connection open", "connection closed", '%s - "WebSocket %s" [accepted]'})


class PerSocketLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in _PER_SOCKET_LINES)


def logging_config(level: str = "info") -> dict[str, Any]:
    """Parley's logging as a ``logging.config.dictConfig`` dictionary: JSON lines on stderr.
    uvicorn applies it in every process it starts (``log_config``), so ``--workers N`` log
    like one (configured only in the parent, the workers wrote nothing below a warning)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"per_socket_lines": {"()": PerSocketLines}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json"}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True, "filters": ["per_socket_lines"]},
            # uvicorn's own access log would duplicate Parley's request log.
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        },
    }


def configure_logging(level: str = "info") -> None:
    logging.config.dictConfig(logging_config(level))
