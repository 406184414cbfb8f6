"""Time, in one place: aware UTC datetimes everywhere in Parley."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime) -> str:
    """RFC 3339 with milliseconds and a ``Z``, the format every payload uses."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
