"""The device's private state on disk: one JSON file per (server, user) in the state
directory, mode 0600 in a 0700 directory, replaced atomically (write, fsync, rename).

Every change runs under an exclusive ``flock`` on a lock file beside it, reading the file
afresh: ``parley chat tail`` and ``parley chat send`` may run at once for one device
without losing each other's ratchet steps.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "parley" / "e2ee"


class DeviceStore:
    def __init__(self, state_dir: Path, server: str, user_id: str) -> None:
        key = hashlib.sha256(f"{server.rstrip('/')}|{user_id}".encode()).hexdigest()[:24]
        self.dir = Path(state_dir)
        self.path = self.dir / f"device-{key}.json"
        self._lock_path = self.dir / f"device-{key}.lock"

    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        return data

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """The state to change in place; written back when the block ends without error."""
        self._ensure_dir()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self.read() or {}
            before = json.dumps(state, separators=(",", ":"))
            yield state
            after = json.dumps(state, separators=(",", ":"))
            if after != before:  # a read-only use costs no write (and no fsync)
                self._write_text(after)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write_text(self, text: str) -> None:
        temp = self.path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, self.path)
