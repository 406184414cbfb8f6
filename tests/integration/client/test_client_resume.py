"""The SDK across connection drops: while another user sends at a steady rate, the
network under the receiver is cut (twice) and its access token expires (4002). After each
drop the session reconnects, fills the gap from ``changes`` and delivers every message
exactly once, in seq order — and marks them delivered."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from parley.client import ParleyClient, Tokens
from parley.clock import utcnow
from parley.security.tokens import TokenSigner
from tests.conftest import TEST_PASSWORD
from tests.support.gateway_helpers import SECRET, WAIT, TcpProxy, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")

TOTAL = 80
INTERVAL = 0.01
CUT_AFTER = (25, 55)


def short_lived(client: ParleyClient, *, seconds_left: float) -> Tokens:
    """The client's tokens, with an access token that expires in ``seconds_left`` (the
    client believes it good for longer, so only the server's word reveals the expiry)."""
    assert client.tokens is not None
    claims = jwt.decode(client.tokens.access_token, options={"verify_signature": False})
    signer = TokenSigner(SECRET, access_ttl=timedelta(seconds=60))
    issued = utcnow() - timedelta(seconds=60 - seconds_left)
    token = signer.issue_access(claims["sub"], claims["sid"], now=issued)
    return Tokens(token, client.tokens.refresh_token, time.time() + 600)


async def test_reconnect_during_steady_sends_delivers_each_message_once_in_order(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        proxy = await TcpProxy(free_port).start()
        alice = await new_user(server.base_url, "alice")
        await (await new_user(server.base_url, "bob")).aclose()
        bob = ParleyClient(proxy.base_url)  # all of bob's traffic, REST included, is cut too
        await bob.login("bob", TEST_PASSWORD)
        # And his access token runs out mid-stream: 4002, refresh, reconnect, resume.
        bob.tokens = short_lived(bob, seconds_left=1.2)
        expiring_token = bob.tokens.access_token
        receiver = await open_log(bob)
        sent: list[str] = []
        try:
            dm = await alice.create_direct(bob.user_id)
            await receiver.wait_type("conversation.created")

            async def steady() -> None:
                for index in range(TOTAL):
                    message = await alice.send_message(dm["id"], f"message {index}")
                    sent.append(message["id"])
                    if index + 1 in CUT_AFTER:
                        assert proxy.cut() >= 1
                    await asyncio.sleep(INTERVAL)

            await steady()
            await receiver.wait_for(lambda _: len(receiver.of("message.created")) >= TOTAL)
            created = receiver.of("message.created")
            assert [e.data["message"]["id"] for e in created] == sent  # once each, in order
            assert [e.data["seq"] for e in created] == list(range(1, TOTAL + 1))
            assert any(e.replayed for e in created), "the drops fell between messages"
            assert len(receiver.session.close_codes) >= 2 and receiver.session.connections >= 3
            assert 1006 in receiver.session.close_codes  # abnormal: no close frame
            # The expiry was met (by the socket's 4002 or a fill's 401) and refreshed away.
            deadline = time.monotonic() + WAIT
            while bob.tokens is None or bob.tokens.access_token == expiring_token:
                assert time.monotonic() < deadline, "the expired token was never refreshed"
                await asyncio.sleep(0.05)
            await receiver.session.wait_ready(WAIT)
            assert receiver.session.position(dm["id"]) == TOTAL

            # Delivery was marked for the user, without being asked.
            deadline = time.monotonic() + WAIT
            while (await alice.receipts(sent[-1]))["delivered_count"] != 1:
                assert time.monotonic() < deadline, "delivered.mark never arrived"
                await asyncio.sleep(0.05)

            # A resend under the same client_msg_id over the socket: the same message.
            first = await receiver.session.send_message(dm["id"], "once", client_msg_id="same")
            again = await receiver.session.send_message(dm["id"], "once", client_msg_id="same")
            assert first["created"] is True and again["created"] is False
            assert again["message"]["id"] == first["message"]["id"]
        finally:
            await receiver.close()
            await proxy.close()
            await alice.aclose()
            await bob.aclose()
