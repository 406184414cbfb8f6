"""An echo bot: the smallest useful Parley bot (``parley.client.Bot``).

    PARLEY_URL=http://127.0.0.1:8000 PARLEY_BOT_TOKEN=pbot_... python examples/echo_bot.py

Get a token with ``POST /api/v1/bots`` (or the web client's Integrations page), then add the
bot to a group like any member. It answers:

- ``!echo some text`` (or ``@botname echo some text``) with ``some text``;
- a message that @mentions it with a short greeting.
"""

from __future__ import annotations

import asyncio
import logging
import os

from parley.client import Bot, Context


def build(url: str, token: str) -> Bot:
    bot = Bot(url, token)

    @bot.on_command("echo")
    async def echo(ctx: Context) -> None:
        await ctx.reply(ctx.args or "(nothing to echo)")

    @bot.on_mention()
    async def greet(ctx: Context) -> None:
        await ctx.reply("Hello! Say `!echo something` and I will repeat it.")

    return bot


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    bot = build(os.environ.get("PARLEY_URL", "http://127.0.0.1:8000"), os.environ["PARLEY_BOT_TOKEN"])
    print("echo bot running", flush=True)
    asyncio.run(bot.run())


if __name__ == "__main__":
    main()
