"""Loopback ports for the servers a test starts as child processes.

A port is probed free and then closed, so that a child can bind it: a race. Ports the kernel
hands out for ``bind(0)`` come from the ephemeral range, the same range every outgoing
connection takes its source port from, and the tests open thousands of those; a probed port
was often taken by some connection before the child bound it (``Address already in use``).
So the ports here come from below the ephemeral range, where only listeners live, and one
process never hands out the same port twice."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20_000  # above the services this machine runs (PostgreSQL, Redis, brokers)
_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range when there is room."""
    floor = _ephemeral_floor()
    if floor - LOWEST >= 1_000:
        for _ in range(200):
            port = random.randrange(LOWEST, floor)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    with socket.socket() as probe:  # no room below the range: the kernel's choice
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    _handed_out.add(port)
    return port
