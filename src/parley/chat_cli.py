"""``parley chat``: send and follow messages on a running server, for terminals, scripts
and bots. Built on the SDK (``parley.client``)::

    parley chat --username alice send --to bob "hello"        # a direct message
    parley chat --username alice send --conversation general "hi all"   # id or slug
    parley chat --username bob tail                            # follow everything
    parley chat --username bob tail --conversation general --json
    parley chat --username alice send --to bob --encrypted "for your eyes only"
    parley chat --username alice devices --user bob            # devices, safety number

The server is ``--server`` or ``$PARLEY_SERVER`` (default ``http://127.0.0.1:8000``); the
user ``--username`` or ``$PARLEY_USERNAME``; the password ``$PARLEY_PASSWORD``, one line on
stdin with ``--password-stdin``, or a prompt.

End-to-end encryption (docs/e2ee.md): in an encrypted conversation messages are encrypted
and decrypted on this machine. The device's keys live in ``--state-dir`` (or
``$PARLEY_STATE_DIR``; default ``~/.config/parley/e2ee``), files readable by you only; the
device is registered the first time an encrypted conversation is used.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parley.ids import looks_like_id

if TYPE_CHECKING:
    from parley.client import ParleyClient, RealtimeEvent

DEFAULT_SERVER = "http://127.0.0.1:8000"
EXIT_ERROR = 2


def add_chat_parser(commands: Any) -> None:
    """Add ``chat`` to the ``parley`` command's subparsers."""
    chat = commands.add_parser("chat", help="send and follow messages on a running server")
    chat.add_argument(
        "--server", default=os.environ.get("PARLEY_SERVER", DEFAULT_SERVER), help="server URL"
    )
    chat.add_argument("--username", default=os.environ.get("PARLEY_USERNAME"))
    chat.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    chat.add_argument(
        "--code",
        default=os.environ.get("PARLEY_TOTP_CODE"),
        help="a two-factor code (or recovery code) for an account with 2FA; asked on a terminal",
    )
    chat.add_argument(
        "--state-dir",
        default=os.environ.get("PARLEY_STATE_DIR"),
        help="where this device's end-to-end encryption keys are kept",
    )
    actions = chat.add_subparsers(dest="chat_command", required=True)

    send = actions.add_parser("send", help="send one message ('-' reads it from stdin)")
    target = send.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="USERNAME", help="a direct message to this user")
    target.add_argument("--conversation", metavar="ID_OR_SLUG")
    send.add_argument("--json", action="store_true", help="print the stored message as JSON")
    send.add_argument(
        "--encrypted", action="store_true", help="end-to-end encrypt the direct conversation"
    )
    send.add_argument("text", nargs="+")
    send.set_defaults(func=cmd_chat_send)

    tail = actions.add_parser("tail", help="print messages as they arrive, until interrupted")
    tail.add_argument("--conversation", metavar="ID_OR_SLUG", help="only this conversation")
    tail.add_argument("--json", action="store_true", help="every event, one JSON object a line")
    tail.set_defaults(func=cmd_chat_tail)

    devices = actions.add_parser("devices", help="end-to-end encryption devices and safety numbers")
    devices.add_argument("--user", metavar="USERNAME", help="another user's devices")
    devices.set_defaults(func=cmd_chat_devices)


def cmd_chat_send(args: argparse.Namespace) -> int:
    return asyncio.run(_guarded(_send(args)))


def cmd_chat_tail(args: argparse.Namespace) -> int:
    return asyncio.run(_guarded(_tail(args)))


def cmd_chat_devices(args: argparse.Namespace) -> int:
    return asyncio.run(_guarded(_devices(args)))


async def _guarded(work: Any) -> int:
    from parley.client import ParleyClientError, ServerError

    try:
        result: int = await work
        return result
    except ServerError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
    except ParleyClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: cannot reach the server: {exc}", file=sys.stderr)
    return EXIT_ERROR


def _password(args: argparse.Namespace) -> str:
    if os.environ.get("PARLEY_PASSWORD"):
        return os.environ["PARLEY_PASSWORD"]
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {args.username}: ")
    raise SystemExit("error: no password: set PARLEY_PASSWORD or use --password-stdin")


async def _logged_in(args: argparse.Namespace) -> ParleyClient:
    from parley.client import ParleyClient
    from parley.client.errors import ApiError

    if not args.username:
        raise SystemExit("error: give --username (or set PARLEY_USERNAME)")
    client = ParleyClient(args.server, device_name="parley chat")
    try:
        password = _password(args)
        try:
            await client.login(args.username, password)
        except ApiError as error:
            if error.code != "TOTP_REQUIRED" or error.mfa_token is None:
                raise
            code = args.code or (input("Two-factor code: ").strip() if sys.stdin.isatty() else "")
            if not code:
                raise SystemExit("error: this account has two-factor auth: give --code") from None
            proof = {"code": code} if code.isdigit() and len(code) == 6 else {"recovery_code": code}
            await client.login_second_factor(error.mfa_token, **proof)
    except BaseException:
        await client.aclose()
        raise
    return client


def _state_dir(args: argparse.Namespace) -> Path:
    from parley.client.e2ee.store import default_state_dir

    return Path(args.state_dir) if args.state_dir else default_state_dir()


async def _with_e2ee(client: ParleyClient, args: argparse.Namespace, *, needed: bool) -> None:
    """Load this device's encryption (registering it the first time it is needed)."""
    from parley.client.e2ee.store import DeviceStore

    if client.e2ee is not None:
        return
    if needed or DeviceStore(_state_dir(args), client.base_url, client.user_id).exists():
        await client.enable_e2ee(_state_dir(args), display_name="parley chat")


async def _conversation_id(client: ParleyClient, target: str) -> str:
    if looks_like_id(target):
        return target
    return str((await client.conversation_by_slug(target))["id"])


async def _user_id(client: ParleyClient, username: str) -> str:
    from parley.client.errors import ApiError

    wanted = username.strip().lower()
    for user in await client.search_users(wanted, limit=50):
        if user["username"] == wanted:
            return str(user["id"])
    raise ApiError(404, {"code": "NOT_FOUND", "message": f"No user named {username!r}"})


async def _direct_with(client: ParleyClient, username: str, *, encrypted: bool = False) -> str:
    user_id = await _user_id(client, username)
    return str((await client.create_direct(user_id, encrypted=encrypted or None))["id"])


async def _send(args: argparse.Namespace) -> int:
    client = await _logged_in(args)
    async with client:
        if args.to:
            conversation_id = await _direct_with(client, args.to, encrypted=args.encrypted)
        else:
            conversation_id = await _conversation_id(client, args.conversation)
        text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
        conversation = await client.conversation(conversation_id)
        await _with_e2ee(client, args, needed=bool(conversation.get("encrypted")))
        message = await client.send_message(conversation_id, text)
    if args.json:
        print(json.dumps(message, ensure_ascii=False))
    else:
        print(f"sent {message['id']} (seq {message['seq']})")
    return 0


class _Names:
    """Turns ids into the names people know, asking the server once per unknown user."""

    def __init__(self, client: ParleyClient) -> None:
        self._client = client
        self._users: dict[str, str] = {}
        self._conversations: dict[str, str] = {}

    def learn(self, conversation: dict[str, Any]) -> None:
        for member in conversation.get("members", []):
            self._users[member["user_id"]] = member["username"]
        if conversation.get("type") == "group":
            self._conversations[conversation["id"]] = (
                f"#{conversation.get('name') or conversation['id']}"
            )
        else:
            others = [
                m["username"]
                for m in conversation.get("members", [])
                if m["user_id"] != self._client.user_id
            ]
            self._conversations[conversation["id"]] = f"@{others[0] if others else 'me'}"

    async def user(self, user_id: str | None) -> str:
        if user_id is None:
            return "*"
        if user_id not in self._users:
            try:
                self._users[user_id] = (await self._client.get_user(user_id))["username"]
            except Exception:
                self._users[user_id] = user_id
        return self._users[user_id]

    async def conversation(self, conversation_id: str) -> str:
        if conversation_id not in self._conversations:
            try:
                self.learn(await self._client.conversation(conversation_id))
            except Exception:
                self._conversations[conversation_id] = conversation_id
        return self._conversations[conversation_id]


async def _describe(event: RealtimeEvent, names: _Names) -> str | None:
    message = event.message
    if message is None or event.conversation_id is None:
        return None
    where = await names.conversation(event.conversation_id)
    who = await names.user(message.get("sender_id"))
    if message.get("kind") == "system":
        detail = (message.get("system_event") or {}).get("type", "changed")
        return f"{where} * {detail}" if event.type == "message.created" else None
    content = message["content"]
    if message.get("decrypted") is False:
        content = "** unable to decrypt **"
    if event.type == "message.created":
        return f"{where} {who}: {content}"
    if event.type == "message.updated" and message.get("edited_at"):
        return f"{where} {who} (edited): {content}"
    if event.type == "message.deleted":
        return f"{where} {who} deleted a message"
    return None


async def _tail(args: argparse.Namespace) -> int:
    from parley.client import RealtimeSession

    client = await _logged_in(args)
    async with client:
        only = await _conversation_id(client, args.conversation) if args.conversation else None
        names = _Names(client)
        async with RealtimeSession(client) as session:
            conversations = (session.ready_data or {}).get("conversations", [])
            for conversation in conversations:
                names.learn(conversation)
            await _with_e2ee(client, args, needed=any(c.get("encrypted") for c in conversations))
            print(f"connected as {client.user['username']}", file=sys.stderr, flush=True)  # type: ignore[index]
            async for event in session:
                if client.e2ee is None and (event.message or {}).get("e2ee"):
                    # The first encrypted conversation: register this device from now on.
                    await _with_e2ee(client, args, needed=True)
                    assert client.e2ee is not None
                    event = await client.e2ee.handle_event(event)
                if only is not None and event.conversation_id != only:
                    continue
                if event.type == "conversation.created":
                    names.learn(event.data.get("conversation") or {})
                if args.json:
                    line: str | None = json.dumps(
                        {"type": event.type, "data": event.data, "replayed": event.replayed},
                        ensure_ascii=False,
                    )
                else:
                    line = await _describe(event, names)
                if line is not None:
                    print(line, flush=True)
    return 0


async def _devices(args: argparse.Namespace) -> int:
    client = await _logged_in(args)
    async with client:
        await _with_e2ee(client, args, needed=True)
        e2ee = client.e2ee
        assert e2ee is not None
        user_id = await _user_id(client, args.user) if args.user else client.user_id
        devices = await e2ee.user_devices(user_id)
        for device in devices:
            mark = " (this device)" if (user_id, device["device_id"]) == (client.user_id, e2ee.device_id) else ""
            key = device["identity_keys"]["signing_key"]
            fingerprint = " ".join(key[i : i + 4] for i in range(0, 43, 4))
            name = device.get("display_name") or ""
            print(f"{device['device_id']}  {name}{mark}\n    {fingerprint}")
        if not devices:
            print("no devices")
        if args.user:
            print(f"safety number with {args.user}:\n    {await e2ee.safety_number(user_id)}")
        for change in e2ee.identity_changes():
            if change["user_id"] == user_id:
                print(f"WARNING: the keys of device {change['device_id']} changed: not used")
    return 0
