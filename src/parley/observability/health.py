"""Readiness: what a check raising :class:`Degraded` means (``/readyz``, ``/metrics``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class Degraded(Exception):
    """A readiness check failed in a way that degrades the node but leaves it serving (a
    node whose Redis is gone keeps committing; clients resume by seq), so a load balancer
    must not take every node out because Redis blinked."""


# A readiness check: returns when the dependency answers, raises (maybe ``Degraded``) if not.
ReadinessCheck = Callable[[], Awaitable[object]]
