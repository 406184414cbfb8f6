"""``parley retention ...``, ``parley backup`` and ``parley restore`` (docs/lifecycle.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from parley.config import Settings


def parse_when(value: str) -> datetime:
    """An ISO date or date-time; naive values are UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _retention(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from parley.container import build_container

    container = build_container(settings)
    try:
        if args.action == "run":
            report = await container.retention.run(as_of=args.as_of)
            # The attachment sweep the run queued is done here: no server may be running.
            await container.attachments.sweep()
            return report.to_public()
        await container.retention.set_legal_hold(None, args.conversation_id, args.action == "hold")
        return {"conversation_id": args.conversation_id, "legal_hold": args.action == "hold"}
    finally:
        await container.close()


def cmd_retention(args: argparse.Namespace) -> int:
    from parley.cli import _migrate

    settings = Settings()
    asyncio.run(_migrate(settings))
    print(json.dumps(asyncio.run(_retention(settings, args))))
    return 0


def add_lifecycle_parsers(commands: Any) -> None:
    retention = commands.add_parser("retention", help="retention sweep and legal holds")
    actions = retention.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="delete expired messages now")
    run.add_argument(
        "--as-of", type=parse_when, default=None, help="pretend it is this date (ISO 8601)"
    )
    for name, text in (("hold", "put a conversation under legal hold"), ("release", "lift it")):
        action = actions.add_parser(name, help=text)
        action.add_argument("conversation_id")
    retention.set_defaults(func=cmd_retention)
