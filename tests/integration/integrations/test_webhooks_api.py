"""Incoming and outgoing webhooks (DESIGN §6.6) against real HTTP receivers on loopback:
an incoming webhook posts as its bot; an outgoing one's receiver verifies the HMAC
signature and its reply is posted back; a failing receiver is retried with backoff, then
dead-lettered in the delivery log, and the webhook disabled after repeated failures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from parley.app import create_app
from parley.clock import utcnow
from parley.container import Container
from parley.integrations.deliveries import DeliveryBusy
from parley.integrations.signing import sign, verify
from parley.jobs.redis_streams import RedisJobQueue
from parley.store.tables.integrations import webhook_deliveries
from tests import conftest
from tests.conftest import UserHandle, make_user
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.integration_helpers import eventually, json_answer, make_bot, receiver, status_answer
from tests.support.redis_fixtures import REDIS_URL

pytestmark = pytest.mark.usefixtures("backend")

FAST_RETRIES: dict[str, Any] = {
    "outbound_allow_private": True,
    "webhook_retry_base_seconds": 0.05,
    "webhook_max_attempts": 3,
    "webhook_max_failures": 2,
}


async def history(client: httpx.AsyncClient, user: UserHandle, conversation_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers)
    assert response.status_code == 200
    return [m for m in response.json()["messages"] if m["kind"] == "text"]


async def make_hook(
    client: httpx.AsyncClient, user: UserHandle, conversation_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/api/v1/conversations/{conversation_id}/webhooks", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()["webhook"]
    return hook


async def delivery_log(
    client: httpx.AsyncClient, user: UserHandle, conversation_id: str, webhook_id: str
) -> list[dict[str, Any]]:
    path = f"/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}/deliveries"
    response = await client.get(path, headers=user.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["deliveries"])


async def post_raw(client: httpx.AsyncClient, path: str, raw: str | bytes, content_type: str = "application/json") -> httpx.Response:
    return await client.post(path, content=raw, headers={"content-type": content_type})


async def test_incoming_webhook_posts_as_its_bot(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="alerts")
    hook = await make_hook(client, alice, group["id"], kind="incoming", name="CI")
    assert hook["url"].endswith(hook["path"]) and hook["path"].startswith(f"/hooks/{hook['id']}/")
    posted = await client.post(hook["path"], json={"text": "build **passed**"})
    assert posted.status_code == 200, posted.text
    message = posted.json()["message"]
    assert message["sender_id"] == hook["bot_id"] and message["content"] == "build **passed**"
    seen = await history(client, bob, group["id"])
    assert seen[-1]["id"] == message["id"]
    bot = (await client.get(f"/api/v1/users/{hook['bot_id']}", headers=bob.headers)).json()["user"]
    assert bot["is_bot"] is True and bot["display_name"] == "CI"

    # A Slack-shaped payload: text, or the text of its section blocks; the rest ignored.
    slack = await client.post(
        hook["path"],
        json={"username": "ci", "icon_emoji": ":robot:", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* done"}},
            {"type": "divider"},
            {"type": "image", "image_url": "https://example.com/x.png"},
        ]},
    )
    assert slack.status_code == 200 and slack.json()["message"]["content"] == "*deploy* done"

    # Listed (without the secret), secret rotation gives a new URL and kills the old one.
    listed = (await client.get(f"/api/v1/conversations/{group['id']}/webhooks", headers=alice.headers)).json()
    assert [h["id"] for h in listed["webhooks"]] == [hook["id"]] and "path" not in listed["webhooks"][0]
    rotated = await client.post(f"/api/v1/conversations/{group['id']}/webhooks/{hook['id']}/secret", headers=alice.headers)
    assert rotated.status_code == 200
    new_path = rotated.json()["webhook"]["path"]
    assert new_path != hook["path"]
    assert (await client.post(hook["path"], json={"text": "old"})).status_code == 404
    assert (await client.post(new_path, json={"text": "new"})).status_code == 200

    # Deleted: the URL is dead, the bot left the conversation.
    deleted = await client.delete(f"/api/v1/conversations/{group['id']}/webhooks/{hook['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await client.post(new_path, json={"text": "gone"})).status_code == 404
    members = (await client.get(f"/api/v1/conversations/{group['id']}/members", headers=alice.headers)).json()
    assert hook["bot_id"] not in [m["user_id"] for m in members["members"]]


async def test_who_manages_webhooks(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    group = await open_group(client, alice, [bob], name="team")
    refused = await client.post(f"/api/v1/conversations/{group['id']}/webhooks", json={"kind": "incoming"}, headers=bob.headers)
    assert refused.status_code == 403
    outsider = await client.post(f"/api/v1/conversations/{group['id']}/webhooks", json={"kind": "incoming"}, headers=carol.headers)
    assert outsider.status_code == 404
    direct = await open_direct(client, alice, bob)
    in_dm = await client.post(f"/api/v1/conversations/{direct['id']}/webhooks", json={"kind": "incoming"}, headers=alice.headers)
    assert in_dm.status_code == 403
    hook = await make_hook(client, alice, group["id"], kind="incoming")
    assert (await client.get(f"/api/v1/conversations/{group['id']}/webhooks/{hook['id']}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"/api/v1/conversations/{group['id']}/webhooks/{hook['id']}", headers=carol.headers)).status_code == 404
    # A webhook posting as one of the caller's own bots; someone else's bot is refused.
    mine = await make_bot(client, alice, "alicebot")
    theirs = await make_bot(client, carol, "carolbot")
    as_mine = await make_hook(client, alice, group["id"], kind="incoming", bot_id=mine.id)
    assert as_mine["bot_id"] == mine.id
    posted = await client.post(as_mine["path"], json={"text": "from my bot"})
    assert posted.json()["message"]["sender_id"] == mine.id
    as_theirs = await client.post(
        f"/api/v1/conversations/{group['id']}/webhooks", json={"kind": "incoming", "bot_id": theirs.id}, headers=alice.headers
    )
    assert as_theirs.status_code == 400 and code(as_theirs) == "VALIDATION_ERROR"
    # A bot token cannot manage webhooks.
    by_bot = await client.post(f"/api/v1/conversations/{group['id']}/webhooks", json={"kind": "incoming"}, headers=mine.headers)
    assert by_bot.status_code == 403


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("not json", "application/json"),
        ("{}", "application/json"),
        ('{"text": ""}', "application/json"),
        ('{"text": "   "}', "application/json"),
        ('{"text": 42}', "application/json"),
        ('{"text": ["a"]}', "application/json"),
        ('{"text": "nul\\u0000"}', "application/json"),
        ('{"text": "lone \\ud800"}', "application/json"),
        ('{"blocks": [{"type": "section", "text": {"text": "lone \\udfff"}}]}', "application/json"),
        ('{"blocks": [{"type": "divider"}]}', "application/json"),
        ('{"blocks": "nope"}', "application/json"),
        ('[1, 2]', "application/json"),
        ('{"text": "' + "x" * 10_001 + '"}', "application/json"),
        ("text=hello", "application/x-www-form-urlencoded"),
    ],
)
async def test_bad_incoming_payloads(client: httpx.AsyncClient, raw: str, content_type: str) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="hooks")
    hook = await make_hook(client, alice, group["id"], kind="incoming")
    response = await post_raw(client, hook["path"], raw, content_type)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in ("VALIDATION_ERROR", "INVALID_JSON", "UNSUPPORTED_MEDIA_TYPE")
    assert await history(client, alice, group["id"]) == []


async def test_incoming_wrong_urls(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="hooks")
    hook = await make_hook(client, alice, group["id"], kind="incoming")
    secret = hook["path"].rsplit("/", 1)[1]
    for path in (
        f"/hooks/{hook['id']}/wrong",
        f"/hooks/{hook['id']}/{secret}x",
        f"/hooks/{hook['id']}/{secret[:-1]}",
        f"/hooks/01NOSUCHHOOK0000000000000/{secret}",
        f"/hooks/not-an-id/{secret}",
        f"/hooks/{hook['id']}/{'s' * 300}",
    ):
        response = await client.post(path, json={"text": "x"})
        assert response.status_code in (400, 404), (path, response.text)
    nul = await client.post(f"/hooks/{hook['id']}/%00", json={"text": "x"})
    assert nul.status_code == 400


@pytest.mark.settings(webhook_rate_per_minute=0.001, webhook_burst=3)
async def test_incoming_rate_limit_under_a_burst(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="hooks")
    hook = await make_hook(client, alice, group["id"], kind="incoming")
    answers = await asyncio.gather(*(client.post(hook["path"], json={"text": f"n{i}"}) for i in range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 3 + [429] * 7
    assert all(code(a) == "RATE_LIMITED" for a in answers if a.status_code == 429)
    assert len(await history(client, alice, group["id"])) == 3
    # Another webhook has its own budget.
    other = await make_hook(client, alice, group["id"], kind="incoming")
    assert (await client.post(other["path"], json={"text": "mine"})).status_code == 200


def check_signature(secret: str, seen_headers: dict[str, str], body: bytes) -> None:
    """What a receiver does, with nothing but the standard library."""
    fields = dict(part.split("=", 1) for part in seen_headers["x-parley-signature"].split(","))
    assert abs(time.time() - int(fields["t"])) < 300
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])


@pytest.mark.settings(**FAST_RETRIES)
async def test_outgoing_webhook_signed_and_answered(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="ops")
    async with receiver() as site:
        site.answers["/hook"] = json_answer({"text": "pong from the receiver"})
        hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/hook"))
        assert len(hook["secret"]) >= 40 and hook["url"] == site.url("/hook")
        sent = await send(client, bob, group["id"], "ping")
        [request] = await site.wait_for("/hook")
        check_signature(hook["secret"], request.headers, request.body)
        assert verify(hook["secret"], request.headers["x-parley-signature"], request.body)
        assert not verify(hook["secret"], request.headers["x-parley-signature"], request.body + b" ")
        assert not verify("another secret", request.headers["x-parley-signature"], request.body)
        payload = request.json()
        assert payload["message"]["id"] == sent["id"] and payload["sender"]["username"] == "bob"
        assert payload["event"] == "message.created" and payload["webhook_id"] == hook["id"]
        # The reply is posted as the webhook's bot, and does not trigger the webhook again.
        messages = await eventually(
            lambda: history(client, bob, group["id"]), lambda seen: seen[-1]["sender_id"] == hook["bot_id"]
        )
        reply = messages[-1]
        assert reply["content"] == "pong from the receiver"
        # The reply is posted before the delivery is marked delivered: read until it is.
        log = await eventually(lambda: delivery_log(client, alice, group["id"], hook["id"]), lambda entries: [d["status"] for d in entries] == ["delivered"])
        assert [(d["attempts"], d["response_status"]) for d in log] == [(1, 200)]
        # A replayed (old) signature fails a receiver's freshness check.
        stale = sign(hook["secret"], request.body, timestamp=int(time.time()) - 3600)
        assert not verify(hook["secret"], stale, request.body)
        assert len(site.at("/hook")) == 1


@pytest.mark.settings(**FAST_RETRIES)
async def test_trigger_words(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="ops")
    async with receiver() as site:
        hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/t"), triggers=["!Deploy", "!rollback"])
        assert hook["triggers"] == ["!deploy", "!rollback"]
        await send(client, alice, group["id"], "just chatting about !deploy")
        await send(client, alice, group["id"], "!deploy api now")
        [request] = await site.wait_for("/t")
        assert request.json()["message"]["content"] == "!deploy api now"
        assert request.json()["trigger_word"] == "!deploy"
        await send(client, alice, group["id"], "!ROLLBACK")
        await site.wait_for("/t", 2)
        assert [r.json()["message"]["content"] for r in site.at("/t")] == ["!deploy api now", "!ROLLBACK"]


@pytest.mark.settings(**FAST_RETRIES)
async def test_failing_receiver_is_retried_then_dead_lettered_and_disabled(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="ops")
    async with receiver() as site:
        site.answers["/down"] = status_answer(503)
        hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/down"))
        base = f"/api/v1/conversations/{group['id']}/webhooks/{hook['id']}"

        async def log() -> list[dict[str, Any]]:
            return await delivery_log(client, alice, group["id"], hook["id"])

        async def settled(count: int) -> list[dict[str, Any]]:
            return await eventually(log, lambda entries: len(entries) == count and all(e["status"] == "failed" for e in entries))

        await send(client, alice, group["id"], "first")
        await site.wait_for("/down", 3)  # three attempts
        [entry] = await settled(1)
        assert entry["attempts"] == 3 and entry["response_status"] == 503 and "503" in entry["error"]
        state = (await client.get(base, headers=alice.headers)).json()["webhook"]
        assert state["enabled"] is True and state["failures"] == 1

        await send(client, alice, group["id"], "second")
        await site.wait_for("/down", 6)
        await settled(2)
        state = (await client.get(base, headers=alice.headers)).json()["webhook"]
        assert state["enabled"] is False and state["failures"] == 2 and state["disabled_at"]
        sample = container.metrics.registry.get_sample_value
        assert sample("parley_webhook_delivery_attempts_total", {"outcome": "retried"}) == 4
        assert sample("parley_webhook_delivery_attempts_total", {"outcome": "failed"}) == 2
        assert sample("parley_webhooks_disabled_total") == 1

        # Disabled: nothing more is sent.
        await send(client, alice, group["id"], "third")
        marker = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/marker"))
        await send(client, alice, group["id"], "fourth")
        await site.wait_for("/marker")
        assert len(site.at("/down")) == 6
        assert marker["id"] != hook["id"]

        # Enabled again by a manager, with a receiver that works now.
        site.answers["/down"] = json_answer({})
        enabled = await client.patch(base, json={"enabled": True}, headers=alice.headers)
        assert enabled.json()["webhook"]["enabled"] is True and enabled.json()["webhook"]["failures"] == 0
        await send(client, alice, group["id"], "fifth")
        await site.wait_for("/down", 7)


@pytest.mark.settings(**FAST_RETRIES)
async def test_concurrent_messages_are_each_delivered_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="burst")
    async with receiver() as site:
        hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/b"))
        sent = await asyncio.gather(*(send(client, alice, group["id"], f"m{i}") for i in range(20)))
        await site.wait_for("/b", 20)
        ids = [r.json()["message"]["id"] for r in site.at("/b")]
        assert sorted(ids) == sorted(m["id"] for m in sent)
        # Every message dispatched again (events seen twice, at-least-once): no new
        # delivery is recorded or queued.
        await asyncio.gather(*(container.outgoing_webhooks.dispatch(m["id"]) for m in sent))
        log = await delivery_log(client, alice, group["id"], hook["id"])
        assert len(log) == 20 and {d["message_id"] for d in log} == set(ids)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "outgoing"},
        {"kind": "outgoing", "url": "ftp://example.com/x"},
        {"kind": "outgoing", "url": "http://user:pw@example.com/x"},
        {"kind": "outgoing", "url": "http://127.0.0.1:9/x"},
        {"kind": "outgoing", "url": "http://169.254.169.254/latest"},
        {"kind": "outgoing", "url": "http://[::1]/x"},
        {"kind": "outgoing", "url": "not a url"},
        {"kind": "outgoing", "url": "https://example.com/" + "x" * 3000},
        {"kind": "outgoing", "url": "https://example.com/", "triggers": ["two words"]},
        {"kind": "outgoing", "url": "https://example.com/", "triggers": ["x"] * 11},
        {"kind": "outgoing", "url": "https://example.com/", "triggers": "deploy"},
        {"kind": "incoming", "url": "https://example.com/"},
        {"kind": "incoming", "triggers": ["x"]},
        {"kind": "sideways"},
        {"kind": "incoming", "name": "nul\x00"},
        {"kind": "incoming", "bot_id": "not-an-id"},
        {"kind": "incoming", "extra": True},
        {},
    ],
)
async def test_bad_webhook_bodies(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="hooks")
    response = await client.post(
        f"/api/v1/conversations/{group['id']}/webhooks",
        content=json.dumps(body),
        headers=alice.headers | {"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert code(response) == "VALIDATION_ERROR"
    assert (await client.get(f"/api/v1/conversations/{group['id']}/webhooks", headers=alice.headers)).json()["webhooks"] == []


async def test_outgoing_deliveries_on_redis_jobs(tmp_path: Path, database_url: str, redis_prefix: str) -> None:
    """With Redis, deliveries are Redis Streams jobs: a retry after a failure, then the reply."""
    settings = conftest.test_settings(
        tmp_path, database_url, redis_url=REDIS_URL, redis_key_prefix=redis_prefix, **FAST_RETRIES
    )
    app = create_app(settings)
    assert isinstance(app.state.parley.jobs, RedisJobQueue)
    async with app.router.lifespan_context(app), receiver() as site:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
            alice = await make_user(client, "alice")
            group = await open_group(client, alice, [], name="redis")
            answers = iter([status_answer(503), json_answer({"text": "second time lucky"})])
            site.answers["/r"] = lambda seen: next(answers)(seen)
            hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/r"))
            await send(client, alice, group["id"], "hello redis")
            await site.wait_for("/r", 2)
            log = await eventually(lambda: delivery_log(client, alice, group["id"], hook["id"]), lambda entries: bool(entries) and entries[0]["status"] == "delivered")
            assert log[0]["attempts"] == 2
            await eventually(
                lambda: history(client, alice, group["id"]), lambda seen: seen[-1]["content"] == "second time lucky"
            )


@pytest.mark.settings(**FAST_RETRIES)
async def test_an_attempt_whose_worker_died_is_taken_over(client: httpx.AsyncClient, container: Container) -> None:
    """At-least-once jobs: a redelivered job finds its attempt "sending". While the lease
    runs the job waits (DeliveryBusy, retried by the queue); after it, the attempt is
    taken over and sent."""
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="crash")
    async with receiver() as site:
        hook = await make_hook(client, alice, group["id"], kind="outgoing", url=site.url("/c"))
        await send(client, alice, group["id"], "before the crash")
        await site.wait_for("/c")
        [entry] = await eventually(
            lambda: delivery_log(client, alice, group["id"], hook["id"]),
            lambda entries: [d["status"] for d in entries] == ["delivered"],
        )
        table = webhook_deliveries

        async def pretend(status: str, age_seconds: float) -> None:
            async with container.db.transaction() as conn:
                await conn.execute(
                    update(table)
                    .where(table.c.id == entry["id"])
                    .values(status=status, updated_at=utcnow() - timedelta(seconds=age_seconds))
                )

        # Mid-attempt on another worker, lease running: busy, nothing sent.
        await pretend("sending", 1)
        with pytest.raises(DeliveryBusy):
            await container.outgoing_webhooks.deliver(entry["id"], 1)
        # The worker died long ago: taken over and sent.
        await pretend("sending", 3600)
        await container.outgoing_webhooks.deliver(entry["id"], 1)
        assert len(site.at("/c")) == 2
        [again] = await delivery_log(client, alice, group["id"], hook["id"])
        assert again["status"] == "delivered" and again["attempts"] == 1
        # Finished: a late duplicate of the job does nothing.
        await container.outgoing_webhooks.deliver(entry["id"], 1)
        assert len(site.at("/c")) == 2
