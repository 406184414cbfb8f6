"""``parley chat`` (the terminal client) as child processes, as a user runs it: one command
to completion, or ``tail`` running beside the test until it is interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.support.gateway_helpers import WAIT


async def chat(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``parley chat *args``: its exit code, standard output and standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley",
        "chat",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Tail:
    """A running ``parley chat tail``."""

    process: asyncio.subprocess.Process

    async def line(self) -> str:
        """The next line it prints (waited for, up to ``WAIT`` seconds)."""
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), WAIT)).decode().strip()


@contextlib.asynccontextmanager
async def chat_tail(env: dict[str, str], username: str) -> AsyncIterator[Tail]:
    """``parley chat --username <username> tail``, connected when this enters; interrupted
    (Ctrl-C) and waited for when it leaves, its exit code then in ``process.returncode``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parley", "chat", "--username", username, "tail",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        ready = await asyncio.wait_for(process.stderr.readline(), WAIT)
        assert ready.decode().strip() == f"connected as {username}"
        yield Tail(process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), WAIT)
