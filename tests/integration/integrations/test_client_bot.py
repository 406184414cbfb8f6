"""The SDK's bot framework (``parley.client.Bot``) and the example bots, against a real
server: commands, mentions, replies; resume after a dropped connection without missing or
repeating a message; a revoked token ends the bot."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from parley.client import Bot, Context, ParleyClient, SessionClosed, Tokens
from tests.support.gateway_helpers import FAST_BACKOFF, WAIT, EventLog, TcpProxy, new_user, open_log, running_server
from tests.support.paths import REPO

pytestmark = pytest.mark.usefixtures("backend")

EXAMPLES = REPO / "examples"


async def bot_in_group(owner: ParleyClient, username: str) -> tuple[str, str, str]:
    """A new bot of ``owner``'s, added to a new group: (bot id, token, conversation id)."""
    bot, token = await owner.create_bot(username)
    group = await owner.request("POST", "/api/v1/conversations", json={"type": "group", "name": f"with {username}", "member_ids": [bot["id"]]})
    return bot["id"], token, group["conversation"]["id"]


async def online(log: EventLog, user_id: str) -> None:
    """The bot's session is up (its presence reached alice): what it is sent now, it sees."""
    await log.wait_for(
        lambda events: any(
            e.type == "presence.updated" and e.data.get("user_id") == user_id and e.data.get("status") == "online"
            for e in events
        ),
        timeout=30,
    )


def from_bot(log: EventLog, bot_id: str) -> list[dict[str, object]]:
    return [e.message for e in log.of("message.created") if e.message and e.message["sender_id"] == bot_id]


@contextlib.contextmanager
def example(name: str, base_url: str, token: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    output = (tmp_path / f"{name}.log").open("wb")
    env = os.environ | {"PARLEY_URL": base_url, "PARLEY_BOT_TOKEN": token}
    process = subprocess.Popen([sys.executable, str(EXAMPLES / f"{name}.py")], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        output.close()


@contextlib.asynccontextmanager
async def server_with_alice(tmp_path: Path, database_url: str, port: int) -> AsyncIterator[tuple[str, ParleyClient, EventLog]]:
    async with running_server(tmp_path, database_url, port) as server:
        alice = await new_user(server.base_url, "alice")
        log = await open_log(alice)
        try:
            yield server.base_url, alice, log
        finally:
            await log.close()
            await alice.aclose()


async def test_example_echo_bot(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with server_with_alice(tmp_path, database_url, free_port) as (base_url, alice, log):
        bot_id, token, group = await bot_in_group(alice, "echobot")
        with example("echo_bot", base_url, token, tmp_path) as process:
            await online(log, bot_id)
            asked = await alice.send_message(group, "!echo hello there")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 1, timeout=30)
            [answer] = from_bot(log, bot_id)
            assert answer["content"] == "hello there" and answer["reply_to_id"] == asked["id"]
            await alice.send_message(group, "hi @echobot")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 2)
            assert "!echo" in str(from_bot(log, bot_id)[1]["content"])
            # Other chatter gets no answer; the next command proves it was read past.
            await alice.send_message(group, "just talking")
            await alice.send_message(group, "@echobot echo via mention")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 3)
            assert [m["content"] for m in from_bot(log, bot_id)][2] == "via mention"
            assert process.poll() is None


async def test_example_standup_bot(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with server_with_alice(tmp_path, database_url, free_port) as (base_url, alice, log):
        bot_id, token, group = await bot_in_group(alice, "standupbot")
        with example("standup_bot", base_url, token, tmp_path):
            await online(log, bot_id)
            await alice.send_message(group, "!standup every 1s")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 3, timeout=30)
            contents = [str(m["content"]) for m in from_bot(log, bot_id)]
            assert contents[0] == "OK: standup every 1s."
            assert all(c.startswith("**Standup time!**") for c in contents[1:3])
            await alice.send_message(group, "!standup stop")
            await log.wait_for(lambda _: any("stopped" in str(m["content"]) for m in from_bot(log, bot_id)))
            await alice.send_message(group, "!standup bogus")
            await log.wait_for(lambda _: any("Usage" in str(m["content"]) for m in from_bot(log, bot_id)))


async def test_bot_resumes_after_a_cut_and_stops_when_revoked(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with server_with_alice(tmp_path, database_url, free_port) as (base_url, alice, log):
        bot_id, token, group = await bot_in_group(alice, "sturdy")
        proxy = await TcpProxy(free_port).start()
        handled: list[str] = []
        bot = Bot(proxy.base_url, token, backoff=FAST_BACKOFF)

        @bot.on_command("count")
        async def count(ctx: Context) -> None:
            handled.append(ctx.args)
            await ctx.reply(f"counted {ctx.args}")

        @bot.on_command("boom")
        async def boom(ctx: Context) -> None:
            raise RuntimeError("a broken handler")

        @bot.on_message()
        async def ignore(ctx: Context) -> None:
            return None

        runner = asyncio.create_task(bot.run())
        try:
            await asyncio.wait_for(bot.ready.wait(), WAIT)
            await alice.send_message(group, "!boom")  # logged; the bot carries on
            await alice.send_message(group, "!count 1")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 1)
            # The network drops; messages sent meanwhile are handled after the resume, once.
            assert proxy.cut() >= 1
            for n in (2, 3, 4):
                await alice.send_message(group, f"!count {n}")
            await log.wait_for(lambda _: len(from_bot(log, bot_id)) >= 4)
            assert sorted(handled) == ["1", "2", "3", "4"]
            assert bot.session is not None and bot.session.connections >= 2

            # Deleting the bot closes its socket (4001): run() ends with SessionClosed.
            await alice.delete_bot(bot_id)
            with pytest.raises(SessionClosed):
                await asyncio.wait_for(runner, WAIT)
        finally:
            bot.stop()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(runner, WAIT)
            await proxy.close()
        # Each handled once (the replies of 2-4 run concurrently: their order is free).
        assert sorted(str(m["content"]) for m in from_bot(log, bot_id)) == [f"counted {n}" for n in (1, 2, 3, 4)]


async def test_sdk_integrations_api(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with server_with_alice(tmp_path, database_url, free_port) as (base_url, alice, log):
        bot, token = await alice.create_bot("apibot", "API bot")
        assert [b["id"] for b in await alice.bots()] == [bot["id"]]
        as_bot = ParleyClient(base_url, tokens=Tokens.bot(token))
        try:
            assert (await as_bot.me())["is_bot"] is True
            new_token = await alice.rotate_bot_token(bot["id"])
            assert new_token != token
        finally:
            await as_bot.aclose()
        group = await alice.request("POST", "/api/v1/conversations", json={"type": "group", "name": "g", "member_ids": []})
        hook = await alice.create_webhook(group["conversation"]["id"], "incoming", name="CI")
        assert hook["url"].startswith(base_url) and len(await alice.webhooks(group["conversation"]["id"])) == 1
        shrug = await alice.run_command(group["conversation"]["id"], "/shrug")
        assert shrug["response_type"] == "in_channel"
        assert {c["name"] for c in await alice.commands(group["conversation"]["id"])} >= {"me", "shrug"}
        await alice.delete_webhook(group["conversation"]["id"], hook["id"])
        await alice.delete_bot(bot["id"])
        assert await alice.bots() == []
