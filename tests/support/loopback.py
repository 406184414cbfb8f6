"""Child processes on loopback for the scale-out tests: free ports, whether one answers,
and the binaries they need."""

from __future__ import annotations

import os
import socket

from tests.conftest import need_service

START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def need_binary(name: str, path: str, how: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        need_service(name, how, FileNotFoundError(path))
