"""Real parts for the notification tests: a push service stand-in, a browser's push keys,
and an SMTP server.

**The push service is a stand-in**: no real push service (FCM, Mozilla autopush, Apple) is
reachable here — the machine has no internet. :class:`PushService` implements RFC 8030's
push endpoint on loopback over real HTTP (uvicorn): it checks the VAPID ``Authorization``
(RFC 8292, signature and ``k`` against the key the subscription was made with), the
``TTL`` / ``Content-Encoding`` / ``Urgency`` / ``Topic`` headers, stores the encrypted
body, and answers 201 — or what a test tells it to (410 for a withdrawn subscription, 500
for an outage). :class:`BrowserKeys` is what a browser generates when it subscribes (a P-256
key pair and a 16-byte auth secret); a test decrypts what the push service received with
the private key (RFC 8291), as the browser would.

The SMTP server is the real aiosmtpd, on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import http_ece
import uvicorn
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.free_ports import free_port

WAIT = 15.0  # seconds any expected notification may take before a test fails


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class BrowserKeys:
    """A browser's side of a push subscription."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives."""
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plaintext = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        result: dict[str, Any] = json.loads(plaintext)
        return result


@dataclass(frozen=True)
class Delivery:
    token: str
    headers: dict[str, str]
    body: bytes
    at: float


class PushService:
    """RFC 8030 push endpoints ``/push/{token}`` on loopback; one token per subscription."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[Delivery] = []
        self.answers: dict[str, list[int]] = {}  # token → statuses to answer next, in order
        self.refused: list[tuple[str, str]] = []  # (token, why) for requests it rejected
        self.server_key: str | None = None  # the VAPID public key pushes must carry
        self._arrived = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, token: str) -> str:
        return f"{self.base_url}/push/{token}"

    def answer(self, token: str, *statuses: int) -> None:
        self.answers.setdefault(token, []).extend(statuses)

    async def _push(self, request: Request) -> Response:
        token = request.path_params["token"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        problem = self._check(headers)
        if problem:
            self.refused.append((token, problem))
            return Response(problem, status_code=400)
        queued = self.answers.get(token)
        status = queued.pop(0) if queued else 201
        if status in (200, 201, 202):
            self.deliveries.append(Delivery(token, headers, body, time.monotonic()))
            self._arrived.set()
        return Response(status_code=status, headers={"Location": f"/message/{len(self.deliveries)}"})

    def _check(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("vapid "):
            return "no VAPID authorization"
        params = dict(part.strip().split("=", 1) for part in auth[len("vapid ") :].split(","))
        if self.server_key is not None and params.get("k") != self.server_key:
            return "VAPID key does not match the subscription's applicationServerKey"
        if not Vapid02.verify(auth):
            return "VAPID signature invalid"
        claims = json.loads(base64.urlsafe_b64decode(params["t"].split(".")[1] + "=="))
        if claims.get("aud") != self.base_url or claims.get("exp", 0) <= time.time():
            return f"VAPID claims wrong: {claims}"
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return "Content-Encoding aes128gcm and TTL are required"
        return ""

    async def start(self) -> PushService:
        app = Starlette(routes=[Route("/push/{token}", self._push, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError("push service stand-in did not start")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)

    def for_token(self, token: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.token == token]

    async def wait_for(
        self, token: str, count: int = 1, *, timeout: float = WAIT
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.for_token(token)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{count} push(es) for {token} not within {timeout}s "
                    f"(got {len(self.for_token(token))}; refused: {self.refused})"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.2))
        return self.for_token(token)


@contextlib.asynccontextmanager
async def push_service() -> AsyncIterator[PushService]:
    service = await PushService().start()
    try:
        yield service
    finally:
        await service.stop()


class Mailbox:
    """aiosmtpd's handler: every message accepted, kept parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(
        self, accept: Callable[[EmailMessage], bool], *, count: int = 1, timeout: float = WAIT
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if accept(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                subjects = [m["Subject"] for m in self.messages]
                raise AssertionError(f"{count} email(s) not within {timeout}s (have: {subjects})")
            await asyncio.sleep(0.05)


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextlib.contextmanager
def smtp_server() -> Any:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        controller.stop()


def body_text(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


async def send_json(
    client: Any, method: str, url: str, body: object, headers: dict[str, str] | None = None
) -> Any:
    """A JSON request written with ASCII escapes, so it can carry what a strict encoder
    refuses (lone surrogates like "\\ud800", as a hostile client would send)."""
    return await client.request(
        method,
        url,
        content=json.dumps(body),
        headers={"content-type": "application/json", **(headers or {})},
    )
