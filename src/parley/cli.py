"""The ``parley`` command: serve, migrate, create-admin, admin (reset-link, set-role),
check-config, version, protocol-schema (and chat)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from parley import __version__
from parley.chat_cli import add_chat_parser
from parley.config import Settings, mask_url_password
from parley.errors import ParleyError
from parley.lifecycle_cli import add_lifecycle_parsers
from parley.store.migrate import migrate_database


def _settings() -> Settings:
    return Settings()


# Values of these settings are never echoed back in an error (they may be secrets, or URLs
# with a password in them).
_UNECHOED = re.compile(r"secret|password|key|token|url|dsn", re.IGNORECASE)


def settings_error_text(error: ValidationError) -> str:
    """What a bad setting is, for a person: each field by its environment variable, what is
    wrong and (unless it may be a secret) the value given; no traceback."""
    lines = ['error: invalid settings (environment or parley.toml; README, "Configuration")']
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(settings)"
        variable = "PARLEY_" + field.upper().replace(".", "__")
        given = "" if _UNECHOED.search(field) else f" (given: {problem.get('input')!r})"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable}: {message}{given}")
    return "\n".join(lines)


# --- serve


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from parley.observability.logging import configure_logging, logging_config

    overrides = {
        "PARLEY_HOST": args.host,
        "PARLEY_PORT": str(args.port) if args.port else None,
        "PARLEY_WORKERS": str(args.workers) if args.workers else None,
    }
    for key, value in overrides.items():
        if value is not None:
            os.environ[key] = value  # workers are new processes: they read the environment
    settings = _settings()
    configure_logging(settings.log_level)
    warn_about_workers(settings)
    # Migrate once here, not in every worker; the secret is created here for the same reason.
    asyncio.run(migrate_database(settings))
    settings.signing_secret()
    print(
        f"Parley {__version__} on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}, "
        f"database {mask_url_password(settings.effective_database_url)})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        "parley.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(settings.log_level),  # applied in every worker too
        access_log=False,
        proxy_headers=settings.trust_proxy_headers,
        # Trusted from any peer when the setting is on, as the REST handlers already read
        # X-Forwarded-For: uvicorn's default trusts only 127.0.0.1, so behind a proxy on
        # another host a socket's address (in the gateway's log lines) was the proxy's.
        forwarded_allow_ips="*" if settings.trust_proxy_headers else None,
        timeout_graceful_shutdown=10,
        ws_max_size=1_048_576,
        ws_per_message_deflate=settings.gateway_compression,
        # No protocol-level keepalive: the gateway's own heartbeat (clients ping, a silent
        # socket is closed with 4010) already finds dead peers, and uvicorn's would be a
        # timer and a ping frame per connection every 20 s (500 wakeups/s at 10,000).
        ws_ping_interval=None,
    )
    return 0


def warn_about_workers(settings: Settings) -> None:
    """Several workers need Redis to act as one server: without it each worker is its own
    island for real-time delivery, presence and rate limits (DESIGN §2 "Scale-out")."""
    if settings.workers > 1 and not settings.redis_url:
        logging.getLogger("parley.cli").warning(
            f"{settings.workers} workers without PARLEY_REDIS_URL: real-time delivery does "
            "not cross workers — a session sees live events only from its own worker (the "
            "rest only when it resumes), and presence and rate limits are per worker. Set "
            "PARLEY_REDIS_URL, or run one worker."
        )


# --- migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    revision = asyncio.run(migrate_database(settings))
    print(f"database at revision {revision}: {mask_url_password(settings.effective_database_url)}")
    return 0


# --- create-admin


async def _create_admin(settings: Settings, username: str, password: str | None) -> str:
    from parley.container import build_container
    from parley.errors import NotFound

    container = build_container(settings)
    try:
        try:
            user = await container.accounts.get_by_username(username)
            await container.accounts.set_admin(user.id, True)
            return f"{user.username} is now an administrator"
        except NotFound:
            if password is None:
                raise SystemExit("no such user; give a password to create one") from None
            user = await container.accounts.register(username, password, is_admin=True)
            return f"created administrator {user.username} ({user.id})"
    finally:
        await container.close()


def cmd_create_admin(args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(migrate_database(settings))
    password: str | None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password (empty to promote an existing user): ") or None
    else:
        password = None
    print(asyncio.run(_create_admin(settings, args.username, password)))
    return 0


# --- admin (operator recovery, no administrator needed)


async def _admin(settings: Settings, args: argparse.Namespace) -> str:
    from parley.container import build_container

    container = build_container(settings)
    try:
        user = await container.accounts.get_by_username(args.username)
        if args.admin_command == "reset-link":
            url, expires_at = await container.credentials.issue_link(user.id, issued_by=user.id)
            return f"{url}\n(single use, until {expires_at.isoformat()})"
        view = await container.administration.update_user(user.id, user.id, role=args.role)
        return f"{view.username} is now {view.role}"
    finally:
        await container.close()


def cmd_admin(args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(migrate_database(settings))
    print(asyncio.run(_admin(settings, args)))
    return 0


# --- check-config


async def _reachability(settings: Settings) -> dict[str, str]:
    from parley.store import migrate
    from parley.store.db import Database

    report: dict[str, str] = {}
    db = Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await asyncio.wait_for(db.ping(), 5)
        current = await migrate.current_revision(db)
        head = migrate.head_revision()
        state = "up to date" if current == head else f"at {current}, head is {head}: run migrate"
        report["database"] = f"ok ({db.dialect}, schema {state})"
    except Exception as exc:  # report, don't crash: this command exists to diagnose
        report["database"] = f"UNREACHABLE: {type(exc).__name__}: {exc}"
    finally:
        await db.dispose()
    if settings.redis_url:
        try:
            from parley.redis_clients import any_redis_client

            client = any_redis_client(settings.redis_url, socket_timeout=5)
            await asyncio.wait_for(client.ping(), 5)
            await client.aclose()
            report["redis"] = "ok"
        except Exception as exc:
            report["redis"] = f"UNREACHABLE: {type(exc).__name__}: {exc}"
    else:
        report["redis"] = "not configured (in-process bus, presence and jobs)"
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
        report["data_dir"] = f"ok ({settings.data_dir.resolve()})"
    except OSError as exc:
        report["data_dir"] = f"NOT WRITABLE: {exc}"
    return report


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings()
    print(json.dumps({"settings": settings.masked()}, indent=2, default=str))
    report = asyncio.run(_reachability(settings))
    print(json.dumps({"reachable": report}, indent=2))
    failed = any(value.startswith(("UNREACHABLE", "NOT")) for value in report.values())
    return 1 if failed else 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"parley {__version__}")
    return 0


def cmd_protocol_schema(args: argparse.Namespace) -> int:
    """Write (or with ``--check``, verify) docs/protocol.schema.json and the web client's
    protocol.js from the protocol's definitions (``parley.gateway.schema``)."""
    from pathlib import Path

    from parley.gateway import schema

    root = Path(args.root)
    if args.check:
        stale = schema.stale(root)
        for path in stale:
            print(f"stale: {path} (run `parley protocol-schema`)", file=sys.stderr)
        return 1 if stale else 0
    for path in schema.write(root):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Parley team chat server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )

    admin = commands.add_parser("create-admin", help="create an administrator or promote a user")
    admin.add_argument("username")
    admin.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    admin.set_defaults(func=cmd_create_admin)

    operator = commands.add_parser("admin", help="account recovery from the server's shell")
    operator_commands = operator.add_subparsers(dest="admin_command", required=True)
    reset = operator_commands.add_parser(
        "reset-link", help="print a single-use password reset link for a user (no SMTP needed)"
    )
    reset.add_argument("username")
    role = operator_commands.add_parser("set-role", help="make a user a user, moderator or admin")
    role.add_argument("username")
    role.add_argument("role", choices=["user", "moderator", "admin"])
    operator.set_defaults(func=cmd_admin)

    commands.add_parser(
        "check-config", help="print the effective settings and what is reachable"
    ).set_defaults(func=cmd_check_config)
    commands.add_parser("version", help="print the version").set_defaults(func=cmd_version)
    protocol = commands.add_parser(
        "protocol-schema", help="write docs/protocol.schema.json and the web client's protocol.js"
    )
    protocol.add_argument("--check", action="store_true", help="fail if either is stale")
    protocol.add_argument("--root", default=".", help="the source checkout (default: .)")
    protocol.set_defaults(func=cmd_protocol_schema)
    add_chat_parser(commands)
    add_lifecycle_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ParleyError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        for detail in exc.details:
            print(f"  {detail.field}: {detail.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(settings_error_text(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
