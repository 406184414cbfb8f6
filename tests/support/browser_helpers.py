"""Browser-test plumbing: Debian's Chromium driven by Playwright (sync API), one real
``parley serve`` on SQLite for the whole run, users made over REST, screenshots on failure.

Chromium is ``/usr/bin/chromium`` (``PARLEY_TEST_CHROMIUM`` overrides). When it is missing,
the browser tests are skipped loudly — except under ``CI=true``, where that fails the run.
Never ``playwright install``: the browser comes from the distribution (``.ci/run``).

Import the fixtures into a test module with ``from tests.support.browser_helpers import *``.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI, TEST_PASSWORD
from tests.support.free_ports import free_port
from tests.support.gateway_helpers import create_admin
from tests.support.server_process import ServerProcess

CHROMIUM = os.environ.get("PARLEY_TEST_CHROMIUM", "/usr/bin/chromium")
# The fake media flags give getUserMedia a generated microphone (a beep) without a prompt:
# voice messages are recorded in the tests as a user would, with no real device.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
ARTIFACTS = Path(
    os.environ.get("PARLEY_TEST_ARTIFACTS", Path(tempfile.gettempdir()) / "parley-test-artifacts")
)
DESKTOP = {"width": 1280, "height": 820}
MOBILE = {"width": 390, "height": 780}
# Generous for a loaded CI machine; every wait is on a condition, never a fixed sleep.
TIMEOUT_MS = 10_000
# Screenshots for the docs (tests/support/paths.py SCREENSHOTS) are written only when asked:
# a test run leaves docs/ alone.
UPDATE_SCREENSHOTS = os.environ.get("PARLEY_UPDATE_SCREENSHOTS", "") == "1"

# The server for browser tests: fast password hashing, send limits raised so a test can
# insert hundreds of messages at once.
SERVER_ENV = {
    "PARLEY_ARGON2_MEMORY_KIB": "1024",
    "PARLEY_ARGON2_TIME_COST": "1",
    "PARLEY_MESSAGE_RATE_PER_SECOND": "5000",
    "PARLEY_MESSAGE_BURST": "5000",
    "PARLEY_CONVERSATION_MESSAGE_RATE_PER_SECOND": "5000",
    "PARLEY_CONVERSATION_MESSAGE_BURST": "5000",
    "PARLEY_API_RATE_PER_SECOND": "5000",
    "PARLEY_API_BURST": "10000",
    "PARLEY_REGISTRATIONS_PER_ADDRESS": "1000000",
    "PARLEY_LOGIN_ADDRESS_FAILURES_ALLOWED": "1000000",
    "PARLEY_LOGIN_FAILURES_ALLOWED": "1000",
    "PARLEY_ACCESS_LOG": "false",
    "PARLEY_GROUP_COMMIT_WINDOW_MS": "1",
    # Link previews of a stand-in web site on loopback (tests/support/link_site.py).
    "PARLEY_OUTBOUND_ALLOW_PRIVATE": "true",
}

__all__ = [
    "DESKTOP",
    "MOBILE",
    "TIMEOUT_MS",
    "Browser",
    "User",
    "browser",
    "conversation_link",
    "message",
    "open_as",
    "rest",
    "shots",
    "unique",
    "web_server",
]


def _require_chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = (
        f"Chromium not found at {CHROMIUM}. Install it with 'apt-get install -y chromium' "
        "(never 'playwright install'), or set PARLEY_TEST_CHROMIUM."
    )
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    print(f"\n*** SKIPPING BROWSER TESTS: {message} ***\n")
    pytest.skip(message)


def unique(prefix: str) -> str:
    """A fresh username: the server is shared by every browser test of the run."""
    return f"{prefix}{secrets.token_hex(3)}"


@dataclass
class User:
    id: str
    username: str
    display_name: str
    access_token: str
    password: str = TEST_PASSWORD

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Rest:
    """A small REST client for test setup against the running server."""

    base_url: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=15)

    def close(self) -> None:
        self.http.close()

    def user(self, prefix: str, display_name: str | None = None, *, exact: bool = False) -> User:
        """A registered, logged-in user named ``prefix`` plus a random suffix (the server
        is shared by the whole run), or exactly ``prefix`` with ``exact``."""
        username = prefix if exact else unique(prefix)
        body: dict[str, Any] = {"username": username, "password": TEST_PASSWORD}
        if display_name is not None:
            body["display_name"] = display_name
        created = self.http.post("/api/v1/auth/register", json=body)
        assert created.status_code == 201, created.text
        login = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD}
        )
        assert login.status_code == 200, login.text
        data = login.json()
        return User(
            data["user"]["id"], username, data["user"]["display_name"], data["access_token"]
        )

    def call(self, user: User, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, "/api/v1" + path, headers=user.headers, **kwargs)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def direct(self, user: User, other: User) -> dict[str, Any]:
        body = {"type": "direct", "user_id": other.id}
        return self.call(user, "POST", "/conversations", json=body)["conversation"]

    def group(self, owner: User, name: str, members: list[User]) -> dict[str, Any]:
        body = {"type": "group", "name": name, "member_ids": [m.id for m in members]}
        return self.call(owner, "POST", "/conversations", json=body)["conversation"]

    def send(self, user: User, conversation_id: str, content: str, **extra: Any) -> dict[str, Any]:
        body = {"content": content, **extra}
        path = f"/conversations/{conversation_id}/messages"
        return self.call(user, "POST", path, json=body)["message"]

    def history(self, user: User, conversation_id: str, **params: Any) -> list[dict[str, Any]]:
        path = f"/conversations/{conversation_id}/messages"
        return self.call(user, "GET", path, params={"limit": 100, **params})["messages"]


# Each test module that star-imports these fixtures gets its own copy of them, so
# "session" scope alone would start one server and one Chromium per module (and Playwright's
# sync API allows only one instance per thread). The first copy to run creates the resource
# and tears it down at the end of the session; the others share it.
_shared: dict[str, Any] = {}


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``parley serve`` (SQLite) shared by every browser test of the run."""
    _require_chromium()
    if "server" in _shared:
        yield _shared["server"]
        return
    port = free_port()
    root = tmp_path_factory.mktemp("web-server")
    env = SERVER_ENV | {
        "PARLEY_DATABASE_URL": f"sqlite:///{root / 'parley.db'}",
        "PARLEY_DATA_DIR": str(root / "data"),
    }
    server = ServerProcess(port, env, root)
    with server:
        _shared["server"] = server
        try:
            yield server
        finally:
            _shared.pop("server", None)


@pytest.fixture(scope="session")
def rest(web_server: ServerProcess) -> Iterator[Rest]:
    if "rest" in _shared:
        yield _shared["rest"]
        return
    client = _shared["rest"] = Rest(web_server.base_url)
    try:
        yield client
    finally:
        _shared.pop("rest", None)
        client.close()


@pytest.fixture(scope="session")
def browser(web_server: ServerProcess) -> Iterator[Browser]:
    if "browser" in _shared:
        yield _shared["browser"]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=_require_chromium(), args=CHROMIUM_ARGS
        )
        _shared["browser"] = Browser(launched, web_server.base_url)
        try:
            yield _shared["browser"]
        finally:
            _shared.pop("browser", None)
            launched.close()


class Browser:
    """The launched Chromium plus the contexts a test opened (closed after each test)."""

    def __init__(self, chromium: Any, base_url: str) -> None:
        self.chromium = chromium
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def context(
        self, *, viewport: dict[str, int] = DESKTOP, color_scheme: str = "light", **options: Any
    ) -> Any:
        context = self.chromium.new_context(
            base_url=self.base_url, viewport=viewport, color_scheme=color_scheme, **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        return context

    def page(self, context: Any) -> Any:
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", lambda m: self._console(m))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        return page

    def _console(self, message: Any) -> None:
        # 4xx answers are part of the tests (a boot-time refresh without a cookie, bad
        # input on purpose) and the app handles them; anything else is a failure.
        expected = re.search(r"Failed to load resource: .* status of 4\d\d", message.text)
        if message.type == "error" and not expected:
            self.errors.append(f"console.error: {message.text}")

    def close_all(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Exception:  # already closed by the test
                pass
        self.contexts.clear()
        self.errors.clear()
        self.dialogs.clear()


def open_as(browser: Browser, user: User, path: str = "/", **context_options: Any) -> Any:
    """A new context logged in as ``user`` (through the cookie-mode login), at ``path``."""
    context = browser.context(**context_options)
    response = context.request.post(
        "/api/v1/auth/login",
        data={"username": user.username, "password": user.password, "cookie": True},
    )
    assert response.ok, response.text()
    page = browser.page(context)
    page.goto(path)
    page.locator(".layout").wait_for(state="attached")
    return page


def conversation_link(page: Any, conversation_id: str) -> Any:
    """The sidebar entry of a conversation (a Playwright locator)."""
    return page.locator(f'.conv-item[data-conversation-id="{conversation_id}"]')


def message(page: Any, text: str) -> Any:
    """The text of every message in the open conversation that contains ``text``."""
    return page.locator(".msg .msg-text", has_text=text)


def make_admin(server: ServerProcess, rest: Rest) -> User:
    """An administrator, made as an operator would: ``parley create-admin``."""
    username = unique("root")
    create_admin(server, username)
    login = rest.http.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert login.status_code == 200, login.text
    data = login.json()
    return User(data["user"]["id"], username, data["user"]["display_name"], data["access_token"])


def dismiss_notifications_card(page: Any) -> None:
    """Answer "Not now" to the card offering desktop notifications, if it is showing."""
    card = page.get_by_role("region", name="Desktop notifications")
    if card.is_visible():
        card.get_by_role("button", name="Not now").click()


def delivered(page: Any, text: str) -> None:
    """Wait until the message with this text is acknowledged by the server (no longer pending)."""
    page.locator(".msg:not(.is-pending)", has_text=text).first.wait_for()


@pytest.fixture
def shots(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """The browser for one test: screenshots of every open page when the test fails, and
    every context closed afterwards."""
    failed_before = request.session.testsfailed
    yield browser
    if request.session.testsfailed > failed_before:
        folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        folder.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(browser.contexts):
            for j, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(folder / f"context{i}-page{j}.png"), full_page=True)
                except Exception:  # a crashed page has no screenshot
                    pass
        print(f"\n*** browser screenshots of the failure: {folder} ***")
        if browser.errors:
            print("browser errors:\n" + "\n".join(browser.errors))
    browser.close_all()
