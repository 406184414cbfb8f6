"""Email end to end, on SQLite and PostgreSQL, through a real SMTP server (aiosmtpd on
loopback): an address is verified by following the mailed link; a missed direct message or
mention arrives as one digest per window, with text and HTML parts, links into the app and
RFC 8058 one-click unsubscribe headers; following the unsubscribe link stops the digests;
read, muted and plain group messages are not mailed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from parley.config import Settings
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.notify_helpers import SmtpServer, body_text, send_json, smtp_server

DELAY = 1.0

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": smtp.url,
            "smtp_starttls": "off",
            "smtp_from": "Parley <noreply@parley.example>",
            "public_url": "https://chat.example.org",
            "email_notify_delay_seconds": DELAY,
            "email_digest_sweep_seconds": 0.2,
            "push_delay_seconds": 0.2,
            **NO_SEND_LIMITS,
        }
    )


def link_in(text: str, path: str) -> str:
    found = re.search(r"https://chat\.example\.org" + re.escape(path) + r"\?token=[A-Za-z0-9._%-]+", text)
    assert found, f"no {path} link in:\n{text}"
    return found.group(0)


def local(url: str) -> str:
    """The path and query of an absolute link (the test client talks to the app directly)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def verified(client: httpx.AsyncClient, smtp: SmtpServer, user: UserHandle, address: str) -> None:
    response = await client.put("/api/v1/users/me/email", json={"address": address}, headers=user.headers)
    assert response.status_code == 202, response.text
    assert response.json()["email"] == {"address": address, "verified": False, "verified_at": None}
    [mail] = await smtp.mailbox.wait_for(lambda m: m["To"] == address and "Confirm" in m["Subject"])
    link = link_in(body_text(mail), "/email/verify")
    assert link in body_text(mail, "html").replace("&amp;", "&")
    page = await client.get(local(link))
    assert page.status_code == 200 and "confirmed" in page.text
    state = await client.get("/api/v1/users/me/email", headers=user.headers)
    assert state.json()["email"]["verified"] is True


async def test_verification_digest_and_one_click_unsubscribe(
    client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    await verified(client, smtp, bob, "Bob@Example.org")

    dm = await open_direct(client, alice, bob)
    group = await open_group(client, carol, [alice, bob], name="Design <review>")
    first = await send(client, alice, dm["id"], "Are you **there**?")
    mention = await send(client, carol, group["id"], "@bob the <b>mock-ups</b> are ready")
    await send(client, carol, group["id"], "plain group chatter, not mailed")

    [digest] = await smtp.mailbox.wait_for(lambda m: "unread" in str(m["Subject"]))
    assert digest["To"] == "Bob@Example.org"
    assert digest["From"] == "Parley <noreply@parley.example>"
    assert digest["Subject"] == "2 unread messages in 2 conversations on Parley"
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(.+)>", digest["List-Unsubscribe"])
    assert unsubscribe and unsubscribe.group(1).startswith("https://chat.example.org/email/unsubscribe?token=")
    text = body_text(digest)
    html = body_text(digest, "html")
    assert "alice" in text and "Are you there?" in text
    assert "@bob the <b>mock-ups</b> are ready" in text
    assert "plain group chatter" not in text
    assert f"https://chat.example.org/c/{dm['id']}/m/{first['id']}" in text
    assert f"https://chat.example.org/c/{group['id']}/m/{mention['id']}" in html
    assert "&lt;b&gt;mock-ups&lt;/b&gt;" in html and "<b>mock-ups" not in html  # escaped
    assert "Design &lt;review&gt;" in html

    # The next message comes in the next digest; each message is mailed once.
    await send(client, alice, dm["id"], "second window")
    later = await smtp.mailbox.wait_for(lambda m: "unread" in str(m["Subject"]), count=2)
    assert later[0] is digest
    assert later[1]["Subject"] == "1 unread message in alice on Parley"
    assert "second window" in body_text(later[1])
    assert "Are you there?" not in body_text(later[1])
    assert later[1]["Message-ID"] != digest["Message-ID"]

    # RFC 8058 one-click: a POST with "List-Unsubscribe=One-Click", no login.
    token = parse_qs(urlsplit(unsubscribe.group(1)).query)["token"][0]
    form = await client.get("/email/unsubscribe", params={"token": token})
    assert form.status_code == 200 and "<form" in form.text  # GET changes nothing
    defaults = await client.get("/api/v1/users/me/notifications", headers=bob.headers)
    assert defaults.json()["notifications"]["email_digest"] is True
    posted = await client.post(
        "/email/unsubscribe",
        params={"token": token},
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200 and "unsubscribed" in posted.text
    defaults = await client.get("/api/v1/users/me/notifications", headers=bob.headers)
    assert defaults.json()["notifications"]["email_digest"] is False
    count = len(smtp.mailbox.messages)
    await send(client, alice, dm["id"], "after unsubscribing")
    await asyncio.sleep(DELAY * 2 + 0.5)
    assert len(smtp.mailbox.messages) == count


async def test_read_or_muted_messages_are_not_mailed(
    client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    await verified(client, smtp, bob, "bob@example.org")
    dm = await open_direct(client, alice, bob)
    group = await open_group(client, alice, [bob], name="Muted")
    await client.patch(
        f"/api/v1/conversations/{group['id']}/settings", json={"muted_until": "forever"}, headers=bob.headers
    )
    read = await send(client, alice, dm["id"], "read on another device")
    await client.post(f"/api/v1/conversations/{dm['id']}/read", json={"seq": read["seq"]}, headers=bob.headers)
    await send(client, alice, group["id"], "@bob but muted")
    await asyncio.sleep(DELAY * 2)
    last = await send(client, alice, dm["id"], "the only one mailed")
    [digest] = await smtp.mailbox.wait_for(lambda m: "unread" in str(m["Subject"]))
    text = body_text(digest)
    assert "the only one mailed" in text
    assert "read on another device" not in text and "but muted" not in text
    assert digest["Subject"] == "1 unread message in alice on Parley"
    assert last["id"] in text


async def test_address_rules(client: httpx.AsyncClient, smtp: SmtpServer) -> None:
    bob = await make_user(client, "bob")
    eve = await make_user(client, "eve")
    for bad in ["", "no-at-sign", "a@b", "x@-bad.org", "two@@example.org", "nul\x00@example.org",
                "spa ce@example.org", "\ud800@example.org", "a" * 300 + "@example.org", "<a@example.org>"]:
        response = await send_json(client, "PUT", "/api/v1/users/me/email", {"address": bad}, bob.headers)
        assert response.status_code == 400, (bad, response.text)
        assert code(response) == "VALIDATION_ERROR"
    for wrong in [None, 5, 2**64, ["a@example.org"], {"a": 1}]:
        response = await client.put("/api/v1/users/me/email", json={"address": wrong}, headers=bob.headers)
        assert response.status_code == 400
    await verified(client, smtp, bob, "shared@example.org")
    # Someone else may set it, but not verify it: a verified address has one owner.
    taken = await client.put("/api/v1/users/me/email", json={"address": "SHARED@example.org"}, headers=eve.headers)
    assert taken.status_code == 202
    [mail] = await smtp.mailbox.wait_for(lambda m: m["To"] == "SHARED@example.org")
    link = link_in(body_text(mail), "/email/verify")
    page = await client.get(local(link))
    assert page.status_code == 409
    token = parse_qs(urlsplit(link).query)["token"][0]
    api = await client.post("/api/v1/email/verify", json={"token": token})
    assert api.status_code == 409 and code(api) == "EMAIL_TAKEN"
    # Tampered, foreign-purpose and garbage tokens.
    # One character of the signature changed for another (not its last: base64 ignores the
    # unused bits a last character carries, so some changes there do not change the bytes).
    tampered = token[:-10] + ("B" if token[-10] == "A" else "A") + token[-9:]
    for bad_token in [tampered, "garbage", bob.access_token]:
        response = await send_json(client, "POST", "/api/v1/email/verify", {"token": bad_token})
        assert response.status_code == 400 and code(response) == "INVALID_LINK", bad_token
    surrogate = await send_json(client, "POST", "/api/v1/email/verify", {"token": "\ud800"})
    assert surrogate.status_code == 400
    page = await client.get("/email/unsubscribe", params={"token": token})  # a verify token
    assert page.status_code == 400
    # Removing the address stops everything; removing twice is a 404.
    assert (await client.delete("/api/v1/users/me/email", headers=bob.headers)).status_code == 204
    assert (await client.delete("/api/v1/users/me/email", headers=bob.headers)).status_code == 404
    assert (await client.get("/api/v1/users/me/email", headers=bob.headers)).json() == {"email": None}
