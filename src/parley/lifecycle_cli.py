"""``parley retention ...``, ``parley backup`` and ``parley restore`` (docs/lifecycle.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parley.config import Settings
from parley.store.migrate import migrate_database


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
    settings = Settings()
    asyncio.run(migrate_database(settings))
    print(json.dumps(asyncio.run(_retention(settings, args))))
    return 0


async def _revision(settings: Settings) -> str | None:
    from parley.store import migrate
    from parley.store.db import Database

    db = Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        return await migrate.current_revision(db)
    finally:
        await db.dispose()


async def _has_data(settings: Settings) -> bool:
    """Whether the target database holds any account (a fresh one holds none)."""
    from sqlalchemy import func, select

    from parley.lifecycle.backup import _sqlite_path
    from parley.store.db import Database
    from parley.store.tables.accounts import users

    if settings.is_sqlite and not _sqlite_path(settings).exists():
        return False
    db = Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        async with db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
        return bool(count)
    except Exception:  # no users table: an empty database
        return False
    finally:
        await db.dispose()


async def _backup(settings: Settings, directory: Path) -> dict[str, Any]:
    from parley.lifecycle.backup import backup
    from parley.lifecycle.progress import Progress

    revision = await _revision(settings)
    return await backup(settings, directory, revision=revision, progress=Progress())


def cmd_backup(args: argparse.Namespace) -> int:
    from parley.lifecycle.backup import BackupError

    settings = Settings()
    try:
        manifest = asyncio.run(_backup(settings, Path(args.directory)))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup of {manifest['database']} (schema {manifest['schema_revision']}) with "
        f"{len(manifest['files'])} files ({manifest['blobs']} blobs from the "
        f"{manifest['media']} media store) in {args.directory}"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from parley.lifecycle.backup import BackupError, restore
    from parley.lifecycle.progress import Progress

    settings = Settings()
    try:
        manifest = asyncio.run(
            restore(
                settings,
                Path(args.directory),
                force=args.force,
                has_data=lambda: _has_data(settings),
                progress=Progress(),
            )
        )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    revision = asyncio.run(migrate_database(settings))
    print(
        f"restored the backup of {manifest['created_at']} ({len(manifest['files'])} files); "
        f"database at revision {revision}"
    )
    return 0


def add_lifecycle_parsers(commands: Any) -> None:
    backup_parser = commands.add_parser(
        "backup", help="copy the database, media (local or S3) and keys into a new directory (server may run)"
    )
    backup_parser.add_argument("directory")
    backup_parser.set_defaults(func=cmd_backup)
    restore_parser = commands.add_parser("restore", help="restore a backup directory")
    restore_parser.add_argument("directory")
    restore_parser.add_argument(
        "--force", action="store_true", help="overwrite a database that has data, and blobs in the media store"
    )
    restore_parser.set_defaults(func=cmd_restore)

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
