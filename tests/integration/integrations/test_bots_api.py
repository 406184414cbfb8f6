"""Bot accounts (DESIGN §6.6): created, listed, rotated and deleted by their owner; a bot
token works only where the bot was added, only on the bot part of the API, never as a
password login, and stops at once when rotated or deleted — REST and WebSocket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_user
from tests.support.chat_helpers import code, open_group, send
from tests.support.gateway_helpers import RawSocket, running_server
from tests.support.integration_helpers import make_bot

pytestmark = pytest.mark.usefixtures("backend")


async def test_bot_lifecycle(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    created = await client.post(
        "/api/v1/bots", json={"username": "Helper", "display_name": "Helper 🤖"}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    bot, token = created.json()["bot"], created.json()["token"]
    assert bot["username"] == "helper" and bot["is_bot"] is True and bot["owner_id"] == alice.id
    assert token.startswith("pbot_")

    listed = (await client.get("/api/v1/bots", headers=alice.headers)).json()["bots"]
    assert [b["id"] for b in listed] == [bot["id"]] and "token" not in listed[0]
    assert (await client.get("/api/v1/bots", headers=bob.headers)).json()["bots"] == []
    # Another user's bot does not exist for them.
    other = await client.get(f"/api/v1/bots/{bot['id']}", headers=bob.headers)
    assert other.status_code == 404
    assert (await client.post(f"/api/v1/bots/{bot['id']}/token", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/bots/{bot['id']}", headers=bob.headers)).status_code == 404

    # The bot shows as a bot to everyone.
    profile = (await client.get(f"/api/v1/users/{bot['id']}", headers=bob.headers)).json()["user"]
    assert profile["is_bot"] is True
    me = (await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {token}"})).json()
    assert me["user"]["id"] == bot["id"] and me["user"]["is_bot"] is True

    # Renamed by its owner (only): everyone sees the new name.
    renamed = await client.patch(f"/api/v1/bots/{bot['id']}", json={"display_name": "Helpful"}, headers=alice.headers)
    assert renamed.status_code == 200 and renamed.json()["bot"]["display_name"] == "Helpful"
    assert (await client.patch(f"/api/v1/bots/{bot['id']}", json={"display_name": "Mine"}, headers=bob.headers)).status_code == 404
    bad = await client.patch(f"/api/v1/bots/{bot['id']}", json={"display_name": "\x07"}, headers=alice.headers)
    assert bad.status_code == 400 and code(bad) == "VALIDATION_ERROR"
    assert (await client.get(f"/api/v1/users/{bot['id']}", headers=bob.headers)).json()["user"]["display_name"] == "Helpful"

    # Rotation: the old token stops at once, the new one works.
    rotated = await client.post(f"/api/v1/bots/{bot['id']}/token", headers=alice.headers)
    assert rotated.status_code == 200
    new_token = rotated.json()["token"]
    assert new_token != token
    old = await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {token}"})
    assert old.status_code == 401 and code(old) == "INVALID_TOKEN"
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {new_token}"})).status_code == 200

    # Deletion: gone from the list, the token stops, its messages would stay.
    assert (await client.delete(f"/api/v1/bots/{bot['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get("/api/v1/bots", headers=alice.headers)).json()["bots"] == []
    gone = await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {new_token}"})
    assert gone.status_code == 401
    assert (await client.delete(f"/api/v1/bots/{bot['id']}", headers=alice.headers)).status_code == 404


async def test_bot_acts_only_where_added(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    bot = await make_bot(client, alice, "echo")
    added = await open_group(client, alice, [bob], name="with bot")
    other = await open_group(client, alice, [bob], name="without bot")
    response = await client.post(
        f"/api/v1/conversations/{added['id']}/members", json={"user_ids": [bot.id]}, headers=alice.headers
    )
    assert response.status_code == 200, response.text

    posted = await client.post(
        f"/api/v1/conversations/{added['id']}/messages", json={"content": "beep"}, headers=bot.headers
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["message"]["sender_id"] == bot.id
    history = await client.get(f"/api/v1/conversations/{added['id']}/messages", headers=bot.headers)
    assert history.status_code == 200 and history.json()["messages"][-1]["content"] == "beep"
    members = (await client.get(f"/api/v1/conversations/{added['id']}/members", headers=bob.headers)).json()
    assert {m["user_id"]: m["is_bot"] for m in members["members"]}[bot.id] is True

    # Not a member: the conversation does not exist for the bot.
    refused = await client.post(
        f"/api/v1/conversations/{other['id']}/messages", json={"content": "beep"}, headers=bot.headers
    )
    assert refused.status_code == 404
    listed = (await client.get("/api/v1/conversations", headers=bot.headers)).json()["conversations"]
    assert [c["id"] for c in listed] == [added["id"]]

    # Outside the bot part of the API.
    for method, path, body in (
        ("POST", "/api/v1/conversations", {"type": "direct", "user_id": bob.id}),
        ("POST", "/api/v1/bots", {"username": "child"}),
        ("POST", "/api/v1/contacts", {"user_id": bob.id}),
        ("PATCH", "/api/v1/users/me", {"display_name": "x"}),
        ("GET", "/api/v1/sessions", None),
        ("POST", f"/api/v1/conversations/{added['id']}/members", {"user_ids": [bob.id]}),
    ):
        answer = await client.request(method, path, json=body, headers=bot.headers)
        assert answer.status_code == 403 and code(answer) == "BOT_NOT_ALLOWED", (method, path, answer.text)

    # Never a password login, whatever the password.
    login = await client.post("/api/v1/auth/login", json={"username": "echo", "password": "!bot"})
    assert login.status_code == 401
    # A bot token is not a bearer token, and a bearer token is not a bot token.
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {bot.token}"})).status_code == 401
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {alice.access_token}"})).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab"},
        {"username": "no spaces"},
        {"username": "nul\x00bot"},
        {"username": "surrogate\ud800"},
        {"username": "ok-bot", "display_name": "x" * 65},
        {"username": "ok-bot", "display_name": "bell\x07"},
        {"username": 12345678},
        {"username": "ok-bot", "extra": 1},
        {},
    ],
)
async def test_bad_bot_bodies(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    alice = await make_user(client, "alice")
    response = await client.post(
        "/api/v1/bots",
        content=json.dumps(body),  # ASCII JSON: a lone surrogate travels as \ud800
        headers=alice.headers | {"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert code(response) == "VALIDATION_ERROR"


async def test_bad_tokens(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    await make_user(client, "taken")
    duplicate = await client.post("/api/v1/bots", json={"username": "taken"}, headers=alice.headers)
    assert duplicate.status_code == 409 and code(duplicate) == "USERNAME_TAKEN"
    for header in ("Bot ", "Bot pbot_nope", "Bot " + "x" * 5000, "Bot pbot_\u00e9\u00e9", "bot"):
        response = await client.get("/api/v1/users/me", headers={"Authorization": header.encode("utf-8")})
        assert response.status_code == 401, (header[:20], response.text)


@pytest.mark.settings(max_bots_per_user=3)
async def test_concurrent_creations_respect_the_limit(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    answers = await asyncio.gather(
        *(client.post("/api/v1/bots", json={"username": f"bot-{i}"}, headers=alice.headers) for i in range(8))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [409] * 5, [a.text for a in answers]
    assert {code(a) for a in answers if a.status_code == 409} == {"TOO_MANY_BOTS"}
    assert len((await client.get("/api/v1/bots", headers=alice.headers)).json()["bots"]) == 3
    # Same username at once: one wins.
    alice2 = await make_user(client, "alice2")
    same = await asyncio.gather(
        *(client.post("/api/v1/bots", json={"username": "twin"}, headers=alice2.headers) for _ in range(4))
    )
    assert sorted(a.status_code for a in same) == [201, 409, 409, 409]


async def test_concurrent_rotations_leave_one_token(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bot = await make_bot(client, alice, "spinner")
    answers = await asyncio.gather(
        *(client.post(f"/api/v1/bots/{bot.id}/token", headers=alice.headers) for _ in range(5))
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    working = []
    for token in [bot.token, *(a.json()["token"] for a in answers)]:
        response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bot {token}"})
        working.append(response.status_code == 200)
    assert sum(working) == 1


async def test_bot_over_the_websocket(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            alice = await make_user(http, "alice")
            bot = await make_bot(http, alice, "socketbot")
            group = await open_group(http, alice, [], name="bots")
            added = await http.post(
                f"/api/v1/conversations/{group['id']}/members", json={"user_ids": [bot.id]}, headers=alice.headers
            )
            assert added.status_code == 200
            socket = await RawSocket.open(server.base_url)
            try:
                ready = await socket.identify(bot.token)
                assert ready["user"]["id"] == bot.id and ready["user"]["is_bot"] is True
                assert [c["id"] for c in ready["conversations"]] == [group["id"]]
                await send(http, alice, group["id"], "hello bot")
                while True:
                    frame = await socket.recv()
                    if frame.get("type") == "message.created":
                        break
                assert frame["data"]["message"]["content"] == "hello bot"
                ack = await socket.call("1", "message.send", {"conversation_id": group["id"], "content": "hi alice"})
                assert ack["op"] == "ack", ack
                # Rotating the token closes the socket at once (4001).
                rotated = await http.post(f"/api/v1/bots/{bot.id}/token", headers=alice.headers)
                assert rotated.status_code == 200
                assert await socket.closed_with(5.0) == 4001
            finally:
                await socket.close()
            again = await RawSocket.open(server.base_url)
            try:
                await again.send({"op": "identify", "token": bot.token})
                assert await again.closed_with(5.0) == 4001
            finally:
                await again.close()
