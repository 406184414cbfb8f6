"""A standup reminder bot (``parley.client.Bot``): posts the standup questions in a
conversation at a fixed interval.

    PARLEY_URL=http://127.0.0.1:8000 PARLEY_BOT_TOKEN=pbot_... python examples/standup_bot.py

In a conversation the bot was added to:

- ``!standup every 24h`` (``s``, ``m`` or ``h``) starts the reminders there;
- ``!standup now`` posts one at once;
- ``!standup stop`` stops them.

Reminders live in this process only (a real deployment would keep them in a file); the
bot reconnects by itself when the server restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re

from parley.client import Bot, Context

QUESTIONS = (
    "**Standup time!** Reply in a thread:\n"
    "1. What did you do yesterday?\n"
    "2. What will you do today?\n"
    "3. Anything in your way?"
)
UNITS = {"s": 1, "m": 60, "h": 3600}
MIN_SECONDS = 1


def parse_interval(text: str) -> float | None:
    match = re.fullmatch(r"(\d{1,6})([smh])", text.strip().lower())
    if match is None:
        return None
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    return seconds if seconds >= MIN_SECONDS else None


def build(url: str, token: str) -> Bot:
    bot = Bot(url, token)
    reminders: dict[str, asyncio.Task[None]] = {}

    async def remind(conversation_id: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await bot.send(conversation_id, QUESTIONS)

    @bot.on_command("standup")
    async def standup(ctx: Context) -> None:
        verb, _, rest = ctx.args.partition(" ")
        running = reminders.pop(ctx.conversation_id, None)
        if verb == "every":
            if running is not None:
                running.cancel()
            every = parse_interval(rest)
            if every is None:
                await ctx.reply("Usage: `!standup every 24h` (s, m or h)")
                return
            reminders[ctx.conversation_id] = asyncio.create_task(remind(ctx.conversation_id, every))
            await ctx.reply(f"OK: standup every {rest.strip()}.")
        elif verb == "now":
            if running is not None:
                reminders[ctx.conversation_id] = running
            await ctx.send(QUESTIONS)
        elif verb == "stop":
            if running is not None:
                running.cancel()
            await ctx.reply("Standup reminders stopped." if running else "No reminders were running.")
        else:
            if running is not None:
                reminders[ctx.conversation_id] = running
            await ctx.reply("Usage: `!standup every 24h`, `!standup now` or `!standup stop`")

    return bot


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    bot = build(os.environ.get("PARLEY_URL", "http://127.0.0.1:8000"), os.environ["PARLEY_BOT_TOKEN"])
    print("standup bot running", flush=True)
    asyncio.run(bot.run())


if __name__ == "__main__":
    main()
