"""Slash commands (DESIGN §6.6): the built-ins, and custom commands calling a real HTTP
endpoint on loopback through the outbound client; an ephemeral answer reaches only the
caller (REST answer and a ``command.response`` event), an in-channel one is posted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.container import Container
from parley.integrations.signing import verify
from tests.conftest import UserHandle, make_user
from tests.support.chat_helpers import code, open_group
from tests.support.gateway_helpers import RawSocket, running_server
from tests.support.integration_helpers import json_answer, receiver, status_answer

pytestmark = pytest.mark.usefixtures("backend")


async def run(client: httpx.AsyncClient, user: UserHandle, conversation_id: str, text: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/commands", json={"text": text}, headers=user.headers
    )


async def register(client: httpx.AsyncClient, user: UserHandle, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/commands", json=body, headers=user.headers)


async def test_builtins(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    group = await open_group(client, alice, [bob], name="fun")

    me = await run(client, alice, group["id"], "/me waves")
    assert me.status_code == 200, me.text
    assert me.json()["response_type"] == "in_channel"
    assert me.json()["message"]["content"] == "_waves_" and me.json()["message"]["sender_id"] == alice.id
    shrug = await run(client, bob, group["id"], "/SHRUG oh well")
    assert shrug.json()["message"]["content"] == "oh well ¯\\_(ツ)_/¯"
    bare = await run(client, bob, group["id"], "/shrug")
    assert bare.json()["message"]["content"] == "¯\\_(ツ)_/¯"

    muted = await run(client, bob, group["id"], "/mute")
    assert muted.json()["response_type"] == "ephemeral" and muted.json()["message"] is None
    # An empty settings PATCH reads them back.
    settings = await client.patch(f"/api/v1/conversations/{group['id']}/settings", json={}, headers=bob.headers)
    assert settings.json()["settings"]["muted_until"] is not None, settings.text

    refused = await run(client, bob, group["id"], "/invite @carol")
    assert refused.status_code == 403
    invited = await run(client, alice, group["id"], "/invite @carol")
    assert invited.status_code == 200 and invited.json()["text"] == "@carol joined."
    again = await run(client, alice, group["id"], "/invite carol")
    assert again.json()["text"] == "@carol is already here."
    members = (await client.get(f"/api/v1/conversations/{group['id']}/members", headers=carol.headers)).json()
    assert carol.id in [m["user_id"] for m in members["members"]]

    available = (await client.get("/api/v1/commands", params={"conversation_id": group["id"]}, headers=alice.headers)).json()
    assert {c["name"] for c in available["commands"] if c["builtin"]} == {"me", "shrug", "mute", "invite"}


@pytest.mark.parametrize(
    ("text", "status", "error"),
    [
        ("no slash", 400, "VALIDATION_ERROR"),
        ("/", 400, "VALIDATION_ERROR"),
        ("/ me", 400, "VALIDATION_ERROR"),
        ("/nosuch thing", 400, "UNKNOWN_COMMAND"),
        ("/me", 400, "VALIDATION_ERROR"),
        ("/me nul\x00", 400, "VALIDATION_ERROR"),
        ("/me lone \ud800", 400, "VALIDATION_ERROR"),
        ("/me " + "x" * 10_001, 400, "VALIDATION_ERROR"),
        ("/invite", 400, "VALIDATION_ERROR"),
        ("/invite @nobody-here", 400, "VALIDATION_ERROR"),
        ("/invite @a @b", 400, "VALIDATION_ERROR"),
        ("/" + "x" * 40, 400, "VALIDATION_ERROR"),
    ],
)
async def test_bad_invocations(client: httpx.AsyncClient, text: str, status: int, error: str) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="bad")
    response = await client.post(
        f"/api/v1/conversations/{group['id']}/commands",
        content=json.dumps({"text": text}),
        headers=alice.headers | {"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert code(response) == error


async def test_only_members_run_commands(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    eve = await make_user(client, "eve")
    group = await open_group(client, alice, [], name="private")
    response = await run(client, eve, group["id"], "/shrug")
    assert response.status_code == 404
    listing = await client.get("/api/v1/commands", params={"conversation_id": group["id"]}, headers=eve.headers)
    assert listing.status_code == 404


@pytest.mark.settings(outbound_allow_private=True)
async def test_custom_commands(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="ops")
    other = await open_group(client, bob, [], name="elsewhere")
    async with receiver() as site:
        site.answers["/weather"] = json_answer({"text": "Sunny, 21°C", "response_type": "in_channel"})
        site.answers["/secret"] = json_answer({"text": "only for you"})
        site.answers["/broken"] = status_answer(500)
        site.answers["/garbage"] = lambda _: __import__("starlette.responses").responses.Response("<html>", media_type="text/html")

        # Site-wide commands are for site admins; a conversation's for its admins.
        assert (await register(client, alice, name="weather", url=site.url("/weather"))).status_code == 403
        await container.accounts.set_admin(alice.id, True)
        created = await register(client, alice, name="Weather", url=site.url("/weather"), description="Forecast")
        assert created.status_code == 201, created.text
        weather = created.json()["command"]
        assert weather["name"] == "weather" and weather["conversation_id"] is None and weather["secret"]
        by_member = await register(client, bob, name="secret", url=site.url("/secret"), conversation_id=group["id"])
        assert by_member.status_code == 403
        secret_cmd = (await register(client, alice, name="secret", url=site.url("/secret"), conversation_id=group["id"])).json()["command"]
        for name in ("broken", "garbage"):
            assert (await register(client, alice, name=name, url=site.url(f"/{name}"), conversation_id=group["id"])).status_code == 201
        taken = await register(client, alice, name="weather", url=site.url("/weather"))
        assert taken.status_code == 409 and code(taken) == "COMMAND_TAKEN"

        # In channel: posted as the caller; the endpoint got a signed request.
        answer = await run(client, bob, group["id"], "/weather Paris  tomorrow")
        assert answer.status_code == 200, answer.text
        assert answer.json()["response_type"] == "in_channel"
        assert answer.json()["message"]["content"] == "Sunny, 21°C" and answer.json()["message"]["sender_id"] == bob.id
        [request] = site.at("/weather")
        assert verify(weather["secret"], request.headers["x-parley-signature"], request.body)
        sent = request.json()
        assert sent["command"] == "/weather" and sent["text"] == "Paris  tomorrow"
        assert sent["user"]["username"] == "bob" and sent["conversation_id"] == group["id"]

        # Ephemeral: only in the answer.
        private = await run(client, bob, group["id"], "/secret")
        assert private.json() | {"id": None} == {
            "id": None, "response_type": "ephemeral", "text": "only for you", "message": None, "error": None
        }
        assert verify(secret_cmd["secret"], site.at("/secret")[0].headers["x-parley-signature"], site.at("/secret")[0].body)
        # A conversation's command exists only there.
        assert code(await run(client, bob, other["id"], "/secret")) == "UNKNOWN_COMMAND"
        assert (await run(client, bob, other["id"], "/weather")).status_code == 200

        # A failing endpoint is the caller's ephemeral error, never a server error.
        for name in ("broken", "garbage"):
            failed = await run(client, bob, group["id"], f"/{name}")
            assert failed.status_code == 200 and failed.json()["error"] == "COMMAND_FAILED", failed.text
        listed = (await client.get("/api/v1/commands", params={"conversation_id": group["id"]}, headers=bob.headers)).json()["commands"]
        assert {c["name"] for c in listed if not c["builtin"]} == {"weather", "secret", "broken", "garbage"}
        assert all("secret" not in c or c["name"] == "secret" for c in listed)

        # Deleting: the creator's conversation admin or a site admin; others see nothing.
        assert (await client.delete(f"/api/v1/commands/{weather['id']}", headers=bob.headers)).status_code == 404
        assert (await client.delete(f"/api/v1/commands/{weather['id']}", headers=alice.headers)).status_code == 204
        assert code(await run(client, bob, group["id"], "/weather")) == "UNKNOWN_COMMAND"


@pytest.mark.settings(outbound_allow_private=False)
async def test_unreachable_and_refused_endpoints(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    await container.accounts.set_admin(alice.id, True)
    group = await open_group(client, alice, [], name="x")
    for url in ("http://127.0.0.1:9/x", "ftp://example.com/", "http://u:p@example.com/", "not a url"):
        refused = await register(client, alice, name="loop", url=url)
        assert refused.status_code == 400 and code(refused) == "VALIDATION_ERROR", url
    # A host name resolving to loopback passes registration, and is refused at call time.
    created = await register(client, alice, name="sneaky", url="http://localhost:9/x")
    assert created.status_code == 201
    answer = await run(client, alice, group["id"], "/sneaky")
    assert answer.status_code == 200 and answer.json()["error"] == "COMMAND_FAILED"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "me", "url": "https://example.com/"},
        {"name": "two words", "url": "https://example.com/"},
        {"name": "", "url": "https://example.com/"},
        {"name": "x" * 33, "url": "https://example.com/"},
        {"name": "ok", "url": "https://example.com/", "description": "d" * 201},
        {"name": "ok", "url": "https://example.com/", "conversation_id": "nope"},
        {"name": "nul\x00", "url": "https://example.com/"},
        {"name": "ok"},
        {"name": "ok", "url": 5},
    ],
)
async def test_bad_registrations(client: httpx.AsyncClient, container: Container, body: dict[str, Any]) -> None:
    alice = await make_user(client, "alice")
    await container.accounts.set_admin(alice.id, True)
    response = await client.post(
        "/api/v1/commands", content=json.dumps(body), headers=alice.headers | {"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert code(response) == "VALIDATION_ERROR"


@pytest.mark.settings(outbound_allow_private=True)
async def test_concurrent_registrations_and_invocations(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    await container.accounts.set_admin(alice.id, True)
    group = await open_group(client, alice, [], name="burst")
    async with receiver() as site:
        site.answers["/ping"] = json_answer({"text": "pong"})
        answers = await asyncio.gather(*(register(client, alice, name="ping", url=site.url("/ping")) for _ in range(6)))
        assert sorted(a.status_code for a in answers) == [201] + [409] * 5
        runs = await asyncio.gather(*(run(client, alice, group["id"], "/ping") for _ in range(15)))
        statuses = sorted(r.status_code for r in runs)
        assert statuses == [200] * 10 + [429] * 5, statuses
        assert len(site.at("/ping")) == 10


@pytest.mark.usefixtures("backend")
async def test_ephemeral_answer_reaches_only_the_caller(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with receiver() as site, running_server(
        tmp_path, database_url, free_port, outbound_allow_private="true"
    ) as server:
        site.answers["/whisper"] = json_answer({"text": "psst"})
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            alice = await make_user(http, "alice")
            bob = await make_user(http, "bob")
            group = await open_group(http, alice, [bob], name="whispers")
            created = await http.post(
                "/api/v1/commands",
                json={"name": "whisper", "url": site.url("/whisper"), "conversation_id": group["id"]},
                headers=alice.headers,
            )
            assert created.status_code == 201, created.text
            alice_socket, bob_socket = await RawSocket.open(server.base_url), await RawSocket.open(server.base_url)
            try:
                await alice_socket.identify(alice.access_token)
                await bob_socket.identify(bob.access_token)
                answer = await run(http, alice, group["id"], "/whisper")
                assert answer.json()["text"] == "psst"
                answer_id = answer.json()["id"]
                # Then a message everyone sees: bob's socket must show it with nothing before.
                posted = await run(http, alice, group["id"], "/shrug")
                assert posted.status_code == 200

                async def events_until_message(socket: RawSocket) -> list[str]:
                    types = []
                    while True:
                        frame = await socket.recv()
                        if frame.get("op") == "event":
                            types.append(frame["type"])
                            if frame["type"] == "message.created":
                                return types
                            if frame["type"] == "command.response":
                                assert frame["data"]["text"] == "psst" and frame["data"]["id"] == answer_id
                                assert frame["data"]["conversation_id"] == group["id"]

                assert "command.response" in await events_until_message(alice_socket)
                assert "command.response" not in await events_until_message(bob_socket)
            finally:
                await alice_socket.close()
                await bob_socket.close()


async def test_a_command_run_in_a_thread_answers_in_the_thread(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="threads")
    sent = await client.post(
        f"/api/v1/conversations/{group['id']}/messages", json={"content": "the root"}, headers=alice.headers
    )
    root = sent.json()["message"]
    shrug = await client.post(
        f"/api/v1/conversations/{group['id']}/commands",
        json={"text": "/shrug in a thread", "thread_root_id": root["id"]},
        headers=bob.headers,
    )
    assert shrug.status_code == 200, shrug.text
    assert shrug.json()["message"]["thread_root_id"] == root["id"]
    thread = await client.get(f"/api/v1/messages/{root['id']}/thread", headers=alice.headers)
    assert [m["content"] for m in thread.json()["messages"]] == ["in a thread ¯\\_(ツ)_/¯"], thread.text
    # A root that is not a message of this conversation is refused, never a server error.
    stray = await client.post(
        f"/api/v1/conversations/{group['id']}/commands",
        json={"text": "/me waves", "thread_root_id": "0" * 26},
        headers=bob.headers,
    )
    assert 400 <= stray.status_code < 500, stray.text
