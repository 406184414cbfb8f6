"""Bad input on the socket: each kind gets its stable error code or close code, the
offending connection carries on where the protocol says so, and other sessions on the node
never notice."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from parley.clock import utcnow
from parley.security.tokens import TokenSigner
from tests.support.gateway_helpers import SECRET, RawSocket, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")

FRAME_LIMIT = 4096
HEARTBEAT_MS = 1000


async def test_bad_frames_get_their_codes_and_hurt_nobody(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(
        tmp_path,
        database_url,
        free_port,
        gateway_max_frame_bytes=FRAME_LIMIT,
        gateway_identify_timeout_seconds=0.5,
        gateway_heartbeat_interval_ms=HEARTBEAT_MS,
        gateway_frame_rate_per_second=2,
        gateway_frame_burst=40,
        gateway_rate_limit_strikes=5,
    ) as server:
        base = server.base_url
        alice = await new_user(base, "alice")
        bob = await new_user(base, "bob")
        dm = await alice.create_direct(bob.user_id)
        bystander = await open_log(bob, auto_delivered=False)
        sockets: list[RawSocket] = []
        try:
            # A client that identifies and then never pings is dropped after two intervals.
            silent = await RawSocket.open(base)
            sockets.append(silent)
            await silent.identify(alice.tokens.access_token)  # type: ignore[union-attr]
            silent_since = asyncio.get_running_loop().time()

            # A token that expires during the session: ready now, 4002 at expiry.
            expiring = await RawSocket.open(base)
            sockets.append(expiring)
            soon = utcnow() - timedelta(seconds=60 - 2.5)  # a 60 s token with 2.5 s left
            short_lived = TokenSigner(SECRET, access_ttl=timedelta(seconds=60)).issue_access(
                alice.user_id, _session_of(alice), now=soon
            )
            await expiring.identify(short_lived)
            expiry_watch = asyncio.create_task(_pinging_until_closed(expiring))

            bad = await RawSocket.open(base)
            sockets.append(bad)
            await _before_identify(bad)
            await bad.identify(alice.tokens.access_token)  # type: ignore[union-attr]
            await _bad_frames(bad, dm["id"])

            # Every other way to fail: each closes only its own connection.
            assert await _close_code_for(base, {"op": "identify", "token": "not-a-jwt"}) == 4001
            signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=1))
            an_hour_ago = utcnow() - timedelta(hours=1)
            expired = signer.issue_access(alice.user_id, _session_of(alice), now=an_hour_ago)
            assert await _close_code_for(base, {"op": "identify", "token": expired}) == 4002
            assert await _close_code_for(base, None) == 4003  # never identifies
            assert await _close_code_for(base, "x" * (FRAME_LIMIT + 1)) == 1009
            assert await _flood(base, alice.tokens.access_token) == 4008  # type: ignore[union-attr]

            # The heartbeat: the silent client is closed with 4010, after 2 intervals.
            assert await silent.closed_with(timeout=4 * HEARTBEAT_MS / 1000) == 4010
            elapsed = asyncio.get_running_loop().time() - silent_since
            assert elapsed >= 2 * HEARTBEAT_MS / 1000 * 0.9

            assert await asyncio.wait_for(expiry_watch, 5) == 4002

            # The bystander saw nothing of it, and still gets what is meant for it.
            await alice.send_message(dm["id"], "still there?")
            await bystander.wait_type("message.created")
            created = bystander.of("message.created")
            assert [e.data["message"]["content"] for e in created] == ["fine", "still there?"]
            assert [e.data["seq"] for e in created] == [1, 2]
            assert bystander.session.close_codes == []
        finally:
            for raw in sockets:
                await raw.close()
            await bystander.close()
            await alice.aclose()
            await bob.aclose()
        assert "Traceback" not in server.log()


def _session_of(client: object) -> str:
    import jwt

    token = client.tokens.access_token  # type: ignore[attr-defined]
    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


async def _pinging_until_closed(raw: RawSocket) -> int | None:
    """Keep the heartbeat going until the server closes; the close code."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await raw.send({"op": "ping"})
            await asyncio.sleep(0.25)  # pongs queue up unread; the close frame still lands
    return raw.ws.close_code


async def _before_identify(raw: RawSocket) -> None:
    await raw.send(
        {"op": "call", "ref": "early", "method": "presence.set", "params": {"status": "away"}}
    )
    frame = await raw.recv()
    assert frame == {
        "op": "error",
        "ref": "early",
        "error": {"code": "NOT_IDENTIFIED", "message": "Identify before calling"},
    }
    await raw.send({"op": "ping"})
    assert (await raw.recv())["op"] == "pong"  # pings are fine before identify


async def _bad_frames(raw: RawSocket, conversation_id: str) -> None:
    cases: list[tuple[object, str | None, str]] = [
        ("this is not json", None, "INVALID_JSON"),
        (b"\x00\x01binary", None, "INVALID_FRAME"),
        ([1, 2, 3], None, "INVALID_FRAME"),
        ({"op": "subscribe", "ref": "r1"}, "r1", "INVALID_FRAME"),
        ({"op": "call", "method": "message.send", "params": {}}, None, "INVALID_FRAME"),
        (
            {"op": "call", "ref": "r2", "method": "message.burn", "params": {}},
            "r2",
            "UNKNOWN_METHOD",
        ),
        (
            {
                "op": "call",
                "ref": "r3",
                "method": "read.mark",
                "params": {"conversation_id": conversation_id, "seq": "1"},
            },
            "r3",
            "VALIDATION_ERROR",
        ),
        (
            {
                "op": "call",
                "ref": "r4",
                "method": "message.send",
                "params": {"conversation_id": conversation_id, "content": 42},
            },
            "r4",
            "VALIDATION_ERROR",
        ),
        (
            {"op": "call", "ref": "r5", "method": "typing.start", "params": []},
            "r5",
            "INVALID_FRAME",
        ),
        ({"op": "identify", "token": "again"}, None, "ALREADY_IDENTIFIED"),
        (
            {
                "op": "call",
                "ref": "r6",
                "method": "message.send",
                "params": {"conversation_id": "0" * 26, "content": "hi"},
            },
            "r6",
            "NOT_FOUND",
        ),
        (
            {
                "op": "call",
                "ref": "r6b",
                "method": "message.send",
                "params": {"conversation_id": "01NOSUCHCONVERSATION00000", "content": "hi"},
            },
            "r6b",
            "VALIDATION_ERROR",
        ),
        (
            {
                "op": "call",
                "ref": "r7",
                "method": "message.send",
                "params": {"conversation_id": conversation_id, "content": "   "},
            },
            "r7",
            "VALIDATION_ERROR",
        ),
    ]
    for frame, ref, code in cases:
        await raw.send(frame)
        answer = await raw.recv_op("error")
        assert answer["ref"] == ref, frame
        assert answer["error"]["code"] == code, (frame, answer)
        assert answer["error"]["message"]
    details = {"r3": "params.seq", "r4": "params.content"}
    for ref, field in details.items():
        answer = await raw.call(
            ref,
            "read.mark" if ref == "r3" else "message.send",
            {
                "conversation_id": conversation_id,
                **({"seq": "1"} if ref == "r3" else {"content": 42}),
            },
        )
        assert answer["error"]["details"][0]["field"] == field
    # After all of that, the connection still works.
    ack = await raw.call(
        "ok", "message.send", {"conversation_id": conversation_id, "content": "fine"}
    )
    assert ack["op"] == "ack" and ack["data"]["message"]["content"] == "fine"


async def _close_code_for(base: str, frame: object) -> int | None:
    raw = await RawSocket.open(base)
    try:
        if frame is not None:
            await raw.send(frame)
        return await raw.closed_with()
    finally:
        await raw.close()


async def _flood(base: str, token: str) -> int | None:
    """Calls far past the connection's rate: RATE_LIMITED errors, then 4008."""
    raw = await RawSocket.open(base)
    try:
        await raw.identify(token)
        for index in range(60):
            await raw.send(
                {"op": "ping"}
                if index % 2
                else {
                    "op": "call",
                    "ref": f"f{index}",
                    "method": "presence.set",
                    "params": {"status": "online"},
                }
            )
        limited = 0
        try:
            while True:
                frame = await raw.recv()
                if frame["op"] == "error":
                    assert frame["error"]["code"] == "RATE_LIMITED"
                    assert frame["error"]["retry_after"] > 0
                    limited += 1
        except Exception:
            pass
        assert limited >= 1
        return raw.ws.close_code
    finally:
        await raw.close()


async def test_huge_seq_and_bad_text_over_the_socket_are_validation_errors(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    """read.mark with a seq no database integer holds, and text with NUL or an unpaired
    surrogate: error frames naming the field, and the connection carries on."""
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "hugo")
        dm = await alice.create_direct(alice.user_id)
        socket = await RawSocket.open(server.base_url)
        try:
            await socket.identify(alice.tokens.access_token)  # type: ignore[union-attr]
            for value in (2**63, 10**30):
                frame = await socket.call("h", "read.mark", {"conversation_id": dm["id"], "seq": value})
                assert frame["op"] == "error" and frame["error"]["code"] == "VALIDATION_ERROR", frame
                assert frame["error"]["details"][0]["field"] == "params.seq"
            for field, value in (("content", "a\u0000b"), ("content", "a\ud800b"), ("reply_to_id", "x\u0000")):
                params = {"conversation_id": dm["id"], "content": "hi", field: value}
                # json.dumps escapes the surrogate: "\ud800" on the wire, as a client would.
                frame = await socket.call(field, "message.send", params)
                assert frame["op"] == "error" and frame["error"]["code"] == "VALIDATION_ERROR", frame
                assert frame["error"]["details"][0]["field"] == f"params.{field}"
            await socket.send({"op": "ping"})
            assert (await socket.recv_op("pong"))["op"] == "pong"
        finally:
            await socket.close()
            await alice.aclose()
