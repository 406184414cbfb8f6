"""End-to-end encryption in the browser tests: an SDK client with its own E2EE device on the
other side of the page (run on an event loop of its own: Playwright's sync API owns the
test thread's), and the page's device once its keys are on the server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from parley.client import ParleyClient
from tests.support.browser_helpers import User
from tests.support.server_process import ServerProcess

T = TypeVar("T")

DEVICE_JS = "document.documentElement.dataset.e2eeDevice"


def in_sdk(
    server: ServerProcess,
    user: User,
    state_dir: Path,
    work: Callable[[ParleyClient], Awaitable[T]],
    *,
    device_id: str | None = None,
) -> T:
    """Run ``work`` with an SDK client of ``user`` (E2EE on, its device kept in
    ``state_dir``) on its own event loop in a thread: Playwright's sync API owns this
    thread's loop."""

    async def main() -> T:
        client = ParleyClient(server.base_url, device_name="sdk")
        try:
            await client.login(user.username, user.password)
            await client.enable_e2ee(state_dir, device_id=device_id)
            return await work(client)
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=60)


async def nothing(client: ParleyClient) -> None:
    """Work for ``in_sdk`` when only the SDK's device has to exist."""
    return None


def sdk_opens_encrypted_dm(server: ServerProcess, sdk_user: User, other: User, state_dir: Path) -> dict[str, Any]:
    """``sdk_user``'s SDK device (made first) opens an encrypted direct conversation with ``other``."""

    async def work(client: ParleyClient) -> dict[str, Any]:
        return dict(await client.create_direct(other.id, encrypted=True))

    return in_sdk(server, sdk_user, state_dir, work)


def browser_device(page: Any) -> str:
    """The id of the page's E2EE device, once its keys are on the server."""
    page.locator("html[data-e2ee-device]").wait_for(state="attached")
    device_id: str = page.evaluate(DEVICE_JS)
    return device_id
