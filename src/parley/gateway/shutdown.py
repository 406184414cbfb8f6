"""Going away on SIGTERM: every session gets 1001 before uvicorn's own shutdown starts.

On SIGTERM uvicorn stops listening and at once closes every WebSocket itself, with 1012,
*before* the application's lifespan shutdown runs — too late for the 1001 the protocol
promises. So while the app runs under uvicorn, its signal handler is wrapped: the first
signal makes the gateway stop accepting and close its sessions with 1001 (calls in progress
finish first; bounded by ``GO_AWAY_TIMEOUT_SECONDS``), then hands the signal to uvicorn
unchanged. A second signal goes straight through (force quit still works).

Outside uvicorn — tests, other ASGI servers — nothing is installed and the lifespan
shutdown does the same job.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from parley.gateway.node import Gateway

SIGNALS = (signal.SIGTERM, signal.SIGINT)

SignalHandler = Callable[[int, FrameType | None], Any]


def _is_uvicorn(handler: object) -> bool:
    owner = getattr(handler, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("uvicorn.")


class _GoingAway:
    def __init__(
        self, gateway: Gateway, loop: asyncio.AbstractEventLoop, previous: SignalHandler
    ) -> None:
        self._gateway = gateway
        self._loop = loop
        self._previous = previous
        self._started = False
        self._task: asyncio.Task[None] | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._started:
            self._previous(signum, frame)
            return
        self._started = True
        # A signal handler may interrupt the loop anywhere: only the thread-safe call is
        # allowed here; the real work starts on the loop's next turn.
        self._loop.call_soon_threadsafe(self._begin, signum, frame)

    def _begin(self, signum: int, frame: FrameType | None) -> None:
        self._task = self._loop.create_task(self._go(signum, frame), name="gateway-going-away")

    async def _go(self, signum: int, frame: FrameType | None) -> None:
        try:
            await self._gateway.go_away()
        finally:
            self._previous(signum, frame)


def install_going_away(gateway: Gateway) -> Callable[[], None]:
    """Wrap uvicorn's SIGTERM / SIGINT handlers, if they are installed; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    installed: list[tuple[int, SignalHandler, _GoingAway]] = []
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        if not callable(previous) or not _is_uvicorn(previous):
            continue
        handler = _GoingAway(gateway, loop, previous)
        signal.signal(signum, handler)
        installed.append((signum, previous, handler))

    def uninstall() -> None:
        for signum, previous, handler in installed:
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous)

    return uninstall
