"""Run the real ``parley serve`` as a child process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

STARTUP_TIMEOUT_SECONDS = 30.0


class ServerProcess:
    def __init__(self, port: int, env: dict[str, str], cwd: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = os.environ | env | {"PARLEY_PORT": str(port), "PARLEY_HOST": "127.0.0.1"}
        self.cwd = cwd
        self.log_path = cwd / f"server-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "parley", "serve"],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: killing it takes its image workers (a forkserver
                # and the resource tracker) too, which would outlive a killed server.
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(f"server did not answer in time:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> bool:
        """SIGTERM; True when the server shut down gracefully within ``timeout``.

        uvicorn re-raises the signal after its graceful shutdown, so a clean exit is
        either status 0 or "terminated by SIGTERM" once the shutdown has been logged.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.log()

    def kill(self) -> None:
        """SIGKILL the server and whatever it started (also after a graceful stop: its
        process group may hold workers that outlived it)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
