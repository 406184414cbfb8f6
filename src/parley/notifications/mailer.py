"""Sending email over SMTP (``PARLEY_SMTP_URL``) with aiosmtplib.

``smtp://user:pass@host:587`` speaks plain SMTP and upgrades with STARTTLS when the server
offers it (``PARLEY_SMTP_STARTTLS=auto``; ``required`` refuses a server without it, ``off``
never tries — a relay on localhost); ``smtps://...:465`` is TLS from the first byte. The user
name and password are percent-decoded from the URL. Without ``PARLEY_SMTP_URL`` the
:class:`DisabledMailer` refuses to send, and the features that need email say so
(``NOT_CONFIGURED``).

One connection per email: digests go out at most once per user per window, which does not
warrant a pool, and a fresh connection never inherits a half-broken session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from parley.errors import NotConfigured

SMTP_PORT = 25
SMTPS_PORT = 465
StartTls = Literal["auto", "required", "off"]


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Stable per logical email: a retried send carries the same Message-ID, so mail clients
    # show one copy if both arrive.
    message_id: str | None = None


class Mailer(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def send(self, email: OutgoingEmail) -> None:
        """Hand ``email`` to the SMTP server; raises when it was not accepted."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("PARLEY_SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (SMTPS_PORT if implicit else SMTP_PORT),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
        )


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.message_id or make_msgid(domain=domain)
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


class SmtpMailer:
    def __init__(self, url: str, *, sender: str, starttls: StartTls, timeout: float) -> None:
        self._target = SmtpTarget.parse(url)
        self._sender = sender
        self._starttls = starttls
        self._timeout = timeout

    @property
    def enabled(self) -> bool:
        return True

    @property
    def sender(self) -> str:
        return self._sender

    async def send(self, email: OutgoingEmail) -> None:
        target = self._target
        start_tls: bool | None = {"auto": None, "required": True, "off": False}[self._starttls]
        await aiosmtplib.send(
            build_message(email, self._sender),
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.implicit_tls,
            start_tls=False if target.implicit_tls else start_tls,
            timeout=self._timeout,
        )


class DisabledMailer:
    """No ``PARLEY_SMTP_URL``: nothing is sent, and asking to send is an error."""

    @property
    def enabled(self) -> bool:
        return False

    async def send(self, email: OutgoingEmail) -> None:
        raise NotConfigured("This server sends no email (PARLEY_SMTP_URL is not set)")
