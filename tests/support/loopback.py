"""Child processes on loopback for the scale-out tests: whether one answers, and the
binaries they need (free ports: ``tests/support/free_ports.py``)."""

from __future__ import annotations

import os
import socket

from tests.conftest import need_service

START_TIMEOUT = 15.0


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def need_binary(name: str, path: str, how: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        need_service(name, how, FileNotFoundError(path))
