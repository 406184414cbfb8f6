"""The SDK's REST client against the app: every route it wraps, its errors, and automatic
token refresh — including many requests finding the token expired at once, which must
refresh once (a rotated refresh token presented twice revokes the session)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from parley.client import ApiError, ParleyClient, Tokens
from parley.clock import utcnow
from parley.config import Settings
from parley.security.tokens import TokenSigner
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
async def transport(app: FastAPI) -> AsyncIterator[httpx.ASGITransport]:
    yield httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))


async def user(transport: httpx.ASGITransport, name: str) -> ParleyClient:
    client = ParleyClient("http://parley.test", transport=transport, device_name="pytest")
    await client.register(name, TEST_PASSWORD, display_name=name.title())
    await client.login(name, TEST_PASSWORD)
    return client


def expire(client: ParleyClient, settings: Settings) -> str:
    """Swap in an access token that expired an hour ago (same user, same session)."""
    assert client.tokens is not None
    claims = jwt.decode(client.tokens.access_token, options={"verify_signature": False})
    signer = TokenSigner(settings.signing_secret(), access_ttl=timedelta(minutes=1))
    stale = signer.issue_access(claims["sub"], claims["sid"], now=utcnow() - timedelta(hours=1))
    # expires_at in the future on purpose: only the server's 401 reveals the expiry.
    client.tokens = Tokens(stale, client.tokens.refresh_token, time.time() + 600)
    return stale


async def test_sdk_covers_the_rest_api(transport: httpx.ASGITransport) -> None:
    alice, bob, carol = [await user(transport, n) for n in ("alice", "bob", "carol")]
    try:
        assert (await alice.me())["username"] == "alice"
        assert (await alice.update_me(display_name="Alice L."))["display_name"] == "Alice L."
        assert (await bob.get_user(alice.user_id))["display_name"] == "Alice L."
        assert [u["username"] for u in await bob.search_users("car")] == ["carol"]
        sessions = await alice.sessions()
        assert len(sessions) == 1 and sessions[0]["device_name"] == "pytest"

        dm = await alice.create_direct(bob.user_id)
        assert (await bob.create_direct(alice.user_id))["id"] == dm["id"]
        group = await alice.create_group("Crew", [bob.user_id], slug="crew", topic="t")
        assert (await bob.conversation_by_slug("crew"))["id"] == group["id"]
        assert {c["id"] for c in await bob.conversations()} == {dm["id"], group["id"]}
        assert (await alice.update_conversation(group["id"], name="Crew 2"))["name"] == "Crew 2"
        assert await alice.add_members(group["id"], [carol.user_id]) == [carol.user_id]
        await alice.set_role(group["id"], bob.user_id, "admin")
        roles = {m["user_id"]: m["role"] for m in await alice.members(group["id"])}
        assert roles == {alice.user_id: "owner", bob.user_id: "admin", carol.user_id: "member"}
        await bob.remove_member(group["id"], carol.user_id)
        await bob.leave(group["id"])
        assert [m["user_id"] for m in await alice.members(group["id"])] == [alice.user_id]

        first = await alice.send_message(dm["id"], "one", client_msg_id="c-1")
        again = await alice.send_message(dm["id"], "one", client_msg_id="c-1")
        assert again["id"] == first["id"]  # idempotent
        second = await bob.send_message(dm["id"], "two", reply_to_id=first["id"])
        assert second["reply_to"]["id"] == first["id"]
        with pytest.raises(ApiError) as forbidden:
            await alice.edit_message(second["id"], "not mine")
        assert forbidden.value.status == 403 and forbidden.value.code == "FORBIDDEN"
        edited = await bob.edit_message(second["id"], "two!")
        assert edited["edited_at"] is not None
        reacted = await alice.add_reaction(second["id"], "🎉")
        assert reacted["reactions"] == [{"emoji": "🎉", "count": 1, "user_ids": [alice.user_id]}]
        assert (await alice.remove_reaction(second["id"], "🎉"))["reactions"] == []
        assert (await alice.message(second["id"]))["content"] == "two!"
        history = await alice.history(dm["id"], limit=1)
        assert [m["id"] for m in history["messages"]] == [second["id"]] and history["has_more"]
        around = await alice.history(dm["id"], around_id=first["id"])
        assert around["target_id"] == first["id"]
        page = await alice.changes(dm["id"], 0, limit=1)
        assert page["has_more"] and page["next_after_seq"] == 1
        everything, last_seq = await alice.changes_since(dm["id"], 0)
        assert [m["id"] for m in everything] == [first["id"], second["id"]] and last_seq == 5
        assert (await bob.mark_delivered(dm["id"], 2))["last_delivered_seq"] == 2
        assert (await bob.mark_read(dm["id"], 5))["unread_count"] == 0
        receipts = await alice.receipts(first["id"])
        assert receipts["read_count"] == 1 and receipts["delivered_count"] == 1
        tombstone = await bob.delete_message(second["id"])
        assert tombstone["deleted"] is True

        assert (await alice.request_contact(carol.user_id))["status"] == "outgoing"
        assert [c["status"] for c in await carol.contacts("incoming")] == ["incoming"]
        assert (await carol.accept_contact(alice.user_id))["status"] == "accepted"
        await carol.remove_contact(alice.user_id)
        await alice.request_contact(carol.user_id)
        await carol.decline_contact(alice.user_id)
        assert await alice.contacts() == []
        await carol.block(bob.user_id)
        assert [b["user"]["id"] for b in await carol.blocks()] == [bob.user_id]
        await carol.unblock(bob.user_id)
        assert await carol.blocks() == []

        with pytest.raises(ApiError) as missing:
            await alice.message("01NOSUCHMESSAGE00000000000")
        assert missing.value.status == 404 and missing.value.code == "NOT_FOUND"
        with pytest.raises(ApiError) as invalid:
            await alice.send_message(dm["id"], "")
        assert invalid.value.code == "VALIDATION_ERROR"
        assert invalid.value.details[0]["field"] == "content"

        await alice.delete_conversation(group["id"])
        await carol.logout()
        assert carol.tokens is None
        phone = ParleyClient("http://parley.test", transport=transport)
        try:
            await phone.login("alice", TEST_PASSWORD)
            other = next(s for s in await alice.sessions() if not s["current"])
            await alice.revoke_session(other["id"])
            with pytest.raises(ApiError) as revoked:
                await phone.me()
            assert revoked.value.code == "SESSION_REVOKED"
        finally:
            await phone.aclose()
        await bob.logout_everywhere()
        assert bob.tokens is None
    finally:
        for client in (alice, bob, carol):
            await client.aclose()


async def test_expired_tokens_refresh_once_for_many_requests(
    transport: httpx.ASGITransport, settings: Settings
) -> None:
    alice = await user(transport, "alice")
    try:
        assert alice.tokens is not None
        old_refresh = alice.tokens.refresh_token
        stale = expire(alice, settings)
        results = await asyncio.gather(*(alice.me() for _ in range(8)))
        assert all(r["username"] == "alice" for r in results)
        assert alice.tokens.access_token != stale
        assert alice.tokens.refresh_token != old_refresh  # rotated, exactly once:
        assert len(await alice.sessions()) == 1  # a second rotation would have revoked it
        # Shortly before expiry the client refreshes first, without a 401.
        current = alice.tokens
        alice.tokens = Tokens(current.access_token, current.refresh_token, time.time() + 5)
        await alice.me()
        assert alice.tokens.refresh_token != current.refresh_token
        assert alice.tokens.expires_at > time.time() + 60
    finally:
        await alice.aclose()


def test_websocket_url_follows_the_scheme() -> None:
    assert ParleyClient("http://h:8000/").websocket_url == "ws://h:8000/ws"
    assert ParleyClient("https://chat.example").websocket_url == "wss://chat.example/ws"
