"""The REST client: every route of ``/api/v1`` as a method, with automatic token refresh.

Access tokens live minutes, refresh tokens rotate (DESIGN §2 "REST API"). The client
refreshes shortly before expiry, and once more when the server answers 401
``TOKEN_EXPIRED``; concurrent requests share a single refresh, because presenting a
rotated refresh token twice makes the server revoke the whole session.

Sends carry a ``client_msg_id`` (generated when not given) and are retried on transport
errors: the server answers a repeated id with the original message, so a retry never
creates a duplicate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from parley import __version__
from parley.client.errors import ApiError
from parley.client.integrations_api import IntegrationsApi

# Refresh this long before the access token expires, so a request never races the expiry.
REFRESH_MARGIN_SECONDS = 30.0
if TYPE_CHECKING:
    from parley.client.e2ee.engine import E2ee

SEND_ATTEMPTS = 3
TOKEN_EXPIRED = "TOKEN_EXPIRED"

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChangesWindow:
    messages: list[JSON]
    last_seq: int
    expired_through_seq: int


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None = None
    # Wall-clock expiry of the access token (seconds since the epoch); 0 when unknown.
    expires_at: float = 0.0
    # "Bearer" for a person's access token, "Bot" for a bot's long-lived token.
    scheme: str = "Bearer"

    @classmethod
    def bot(cls, token: str) -> Tokens:
        """A bot's token (``POST /api/v1/bots``): never expires, never refreshed."""
        return cls(access_token=token, scheme="Bot")

    @classmethod
    def from_response(cls, body: JSON) -> Tokens:
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=time.time() + float(body.get("expires_in", 0)),
        )

    def expiring(self, margin: float = REFRESH_MARGIN_SECONDS) -> bool:
        return bool(self.expires_at) and time.time() + margin >= self.expires_at


def _segment(value: str) -> str:
    return quote(value, safe="")


class ParleyClient(IntegrationsApi):
    """``async with ParleyClient(url) as client: await client.login(name, password)``
    (or ``ParleyClient(url, tokens=Tokens.bot(token))`` for a bot)."""

    def __init__(
        self,
        base_url: str,
        *,
        tokens: Tokens | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        device_name: str | None = None,
        device_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.user: JSON | None = None
        self.device_name = device_name
        # From the last login: sent at the next one, it marks this client as a known device
        # (strangers' failed logins on the username never slow it down). Keep it with the
        # refresh token to have it survive restarts.
        self.device_token = device_token
        headers = {"User-Agent": f"parley-sdk/{__version__}"}
        if device_name:
            headers["X-Parley-Device"] = device_name
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout, headers=headers
        )
        self._refresh_lock = asyncio.Lock()
        # End-to-end encryption, once enable_e2ee() ran: sends, reads and realtime events
        # in encrypted conversations are then encrypted and decrypted transparently.
        self.e2ee: E2ee | None = None

    async def __aenter__(self) -> ParleyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def websocket_url(self) -> str:
        scheme, _, rest = self.base_url.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    @property
    def user_id(self) -> str:
        if self.user is None:
            raise RuntimeError("log in first")
        return str(self.user["id"])

    # --- transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """One API call; the decoded JSON body (None for 204), or :class:`ApiError`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(2):
            headers = {}
            token = ""
            if authenticated:
                token = await self.access_token()
                headers["Authorization"] = f"{self.tokens.scheme if self.tokens else 'Bearer'} {token}"
            response = await self._http.request(
                method, path, json=json, params=query or None, headers=headers
            )
            if (
                response.status_code == 401
                and authenticated
                and attempt == 0
                and self._error_code(response) == TOKEN_EXPIRED
                and self.tokens is not None
                and self.tokens.refresh_token
            ):
                await self.refresh(stale_access_token=token)
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _error_code(response: httpx.Response) -> str | None:
        try:
            return str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.is_success and (response.status_code == 204 or not response.content):
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {"code": "HTTP_ERROR", "message": response.text[:200]}
        raise ApiError(response.status_code, error)

    # --- tokens

    async def access_token(self) -> str:
        """A current access token, refreshed first when it is about to expire."""
        if self.tokens is None:
            raise RuntimeError("log in first (or pass tokens=)")
        if self.tokens.expiring() and self.tokens.refresh_token:
            await self.refresh(stale_access_token=self.tokens.access_token)
        return self.tokens.access_token

    async def refresh(self, *, stale_access_token: str | None = None) -> None:
        """Rotate the tokens. Concurrent callers holding the same stale token wait for one
        refresh instead of each presenting the (single-use) refresh token."""
        async with self._refresh_lock:
            if self.tokens is None or not self.tokens.refresh_token:
                raise RuntimeError("no refresh token")
            if stale_access_token is not None and self.tokens.access_token != stale_access_token:
                return  # someone refreshed while we waited
            body = await self.request(
                "POST",
                "/api/v1/auth/refresh",
                json={"refresh_token": self.tokens.refresh_token},
                authenticated=False,
            )
            self.tokens = Tokens.from_response(body)

    # --- auth and sessions

    async def register(self, username: str, password: str, display_name: str | None = None) -> JSON:
        body = {"username": username, "password": password, "display_name": display_name}
        result = await self.request("POST", "/api/v1/auth/register", json=body, authenticated=False)
        return dict(result["user"])

    async def login(
        self,
        username: str,
        password: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> JSON:
        """Log in. An account with two-factor auth needs ``code`` (from the authenticator
        app) or ``recovery_code``; without either it raises ``ApiError`` ``TOTP_REQUIRED``,
        whose ``mfa_token`` :meth:`login_second_factor` takes."""
        body: JSON = {"username": username, "password": password}
        if self.device_name:
            body["device_name"] = self.device_name
        if self.device_token:
            body["device_token"] = self.device_token
        try:
            result = await self.request("POST", "/api/v1/auth/login", json=body, authenticated=False)
        except ApiError as error:
            if error.code != "TOTP_REQUIRED" or error.mfa_token is None or not (code or recovery_code):
                raise
            return await self.login_second_factor(
                error.mfa_token, code=code, recovery_code=recovery_code
            )
        return self._logged_in(result)

    async def login_second_factor(
        self, mfa_token: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> JSON:
        """The second step of a login with two-factor auth (``POST /api/v1/auth/login/2fa``)."""
        body: JSON = {"mfa_token": mfa_token}
        if code is not None:
            body["code"] = code
        if recovery_code is not None:
            body["recovery_code"] = recovery_code
        if self.device_name:
            body["device_name"] = self.device_name
        result = await self.request("POST", "/api/v1/auth/login/2fa", json=body, authenticated=False)
        return self._logged_in(result)

    def _logged_in(self, result: JSON) -> JSON:
        self.tokens = Tokens.from_response(result)
        self.device_token = result.get("device_token") or self.device_token
        self.user = dict(result["user"])
        return self.user

    async def change_password(self, current_password: str, new_password: str) -> int:
        """Change the password; every other session is signed out. How many were."""
        body = {"current_password": current_password, "new_password": new_password}
        result = await self.request("POST", "/api/v1/users/me/password", json=body)
        return int(result["sessions_revoked"])

    async def logout(self) -> None:
        await self.request("POST", "/api/v1/auth/logout")
        self.tokens = None

    async def logout_everywhere(self) -> None:
        await self.request("POST", "/api/v1/auth/logout-all")
        self.tokens = None

    async def sessions(self) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/sessions"))["sessions"])

    async def revoke_session(self, session_id: str) -> None:
        await self.request("DELETE", f"/api/v1/sessions/{_segment(session_id)}")

    # --- users

    async def me(self) -> JSON:
        self.user = dict((await self.request("GET", "/api/v1/users/me"))["user"])
        return self.user

    async def update_me(self, *, display_name: str | None = None) -> JSON:
        result = await self.request(
            "PATCH", "/api/v1/users/me", json={"display_name": display_name}
        )
        self.user = dict(result["user"])
        return self.user

    async def get_user(self, user_id: str) -> JSON:
        return dict((await self.request("GET", f"/api/v1/users/{_segment(user_id)}"))["user"])

    async def search_users(self, q: str, *, limit: int = 20) -> list[JSON]:
        result = await self.request("GET", "/api/v1/users", params={"q": q, "limit": limit})
        return list(result["users"])

    # --- end-to-end encryption

    async def enable_e2ee(
        self,
        state_dir: str | Path | None = None,
        *,
        device_id: str | None = None,
        display_name: str | None = None,
    ) -> E2ee:
        """Register this device (keys kept in ``state_dir``, by default in the user's
        config directory) and encrypt and decrypt transparently from now on."""
        from parley.client.e2ee.engine import E2ee
        from parley.client.e2ee.store import default_state_dir

        e2ee = E2ee(
            self,
            Path(state_dir) if state_dir is not None else default_state_dir(),
            device_id=device_id,
            display_name=display_name if display_name is not None else self.device_name,
        )
        await e2ee.start()
        self.e2ee = e2ee
        return e2ee

    async def _decrypted(self, messages: list[JSON]) -> list[JSON]:
        return await self.e2ee.decrypt_messages(messages) if self.e2ee is not None else messages

    # --- conversations

    async def create_direct(self, user_id: str, *, encrypted: bool | None = None) -> JSON:
        body: JSON = {"type": "direct", "user_id": user_id}
        if encrypted is not None:
            body["encrypted"] = encrypted
        return dict(
            (await self.request("POST", "/api/v1/conversations", json=body))["conversation"]
        )

    async def create_group(
        self,
        name: str,
        member_ids: list[str],
        *,
        slug: str | None = None,
        topic: str = "",
        encrypted: bool | None = None,
    ) -> JSON:
        body: JSON = {
            "type": "group",
            "name": name,
            "member_ids": member_ids,
            "slug": slug,
            "topic": topic,
        }
        if encrypted is not None:
            body["encrypted"] = encrypted
        return dict(
            (await self.request("POST", "/api/v1/conversations", json=body))["conversation"]
        )

    async def conversations(self) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/conversations"))["conversations"])

    async def conversation(self, conversation_id: str) -> JSON:
        path = f"/api/v1/conversations/{_segment(conversation_id)}"
        return dict((await self.request("GET", path))["conversation"])

    async def conversation_by_slug(self, slug: str) -> JSON:
        path = f"/api/v1/conversations/by-slug/{_segment(slug)}"
        return dict((await self.request("GET", path))["conversation"])

    async def update_conversation(
        self,
        conversation_id: str,
        *,
        name: str | None = None,
        topic: str | None = None,
        slug: str | None = None,
        encrypted: bool | None = None,
    ) -> JSON:
        changes = {
            k: v
            for k, v in {"name": name, "topic": topic, "slug": slug, "encrypted": encrypted}.items()
            if v is not None
        }
        path = f"/api/v1/conversations/{_segment(conversation_id)}"
        return dict((await self.request("PATCH", path, json=changes))["conversation"])

    async def delete_conversation(self, conversation_id: str) -> None:
        await self.request("DELETE", f"/api/v1/conversations/{_segment(conversation_id)}")

    async def members(self, conversation_id: str) -> list[JSON]:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/members"
        return list((await self.request("GET", path))["members"])

    async def add_members(self, conversation_id: str, user_ids: list[str]) -> list[str]:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/members"
        return list((await self.request("POST", path, json={"user_ids": user_ids}))["added"])

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/members/{_segment(user_id)}"
        await self.request("DELETE", path)

    async def leave(self, conversation_id: str) -> None:
        await self.remove_member(conversation_id, self.user_id)

    async def set_role(self, conversation_id: str, user_id: str, role: str) -> None:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/members/{_segment(user_id)}"
        await self.request("PATCH", path, json={"role": role})

    async def mark_read(self, conversation_id: str, seq: int) -> JSON:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/read"
        return dict(await self.request("POST", path, json={"seq": seq}))

    async def mark_delivered(self, conversation_id: str, seq: int) -> JSON:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/delivered"
        return dict(await self.request("POST", path, json={"seq": seq}))

    # --- messages

    async def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        client_msg_id: str | None = None,
        reply_to_id: str | None = None,
        thread_root_id: str | None = None,
        thread_broadcast: bool = False,
    ) -> JSON:
        """Send; retried on transport errors under the same ``client_msg_id`` (and, in an
        encrypted conversation, the same ciphertext). With ``thread_root_id``, a reply in
        that message's thread (``thread_broadcast``: also shown in the conversation)."""
        body: JSON = {
            "content": content,
            "client_msg_id": client_msg_id or uuid.uuid4().hex,
            "reply_to_id": reply_to_id,
        }
        if thread_root_id is not None:
            body |= {"thread_root_id": thread_root_id, "thread_broadcast": thread_broadcast}
        sealed = self.e2ee is not None and await self.e2ee.is_encrypted(conversation_id)
        if sealed:
            assert self.e2ee is not None
            body |= {"content": ""} | await self.e2ee.encrypt(conversation_id, content)
        path = f"/api/v1/conversations/{_segment(conversation_id)}/messages"
        for attempt in range(SEND_ATTEMPTS):
            try:
                message = dict((await self.request("POST", path, json=body))["message"])
                return message | {"content": content, "decrypted": True} if sealed else message
            except httpx.TransportError:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def history(
        self,
        conversation_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        around_id: str | None = None,
        limit: int = 50,
    ) -> JSON:
        """``{messages, has_more}`` (plus ``has_more_before`` / ``_after`` around a message)."""
        params = {
            "before_seq": before_seq,
            "after_seq": after_seq,
            "around_id": around_id,
            "limit": limit,
        }
        path = f"/api/v1/conversations/{_segment(conversation_id)}/messages"
        page = dict(await self.request("GET", path, params=params))
        page["messages"] = await self._decrypted(page["messages"])
        return page

    async def changes(self, conversation_id: str, after_seq: int, *, limit: int = 500) -> JSON:
        """One page of the resume feed: ``{messages, last_seq, has_more, next_after_seq}``."""
        path = f"/api/v1/conversations/{_segment(conversation_id)}/changes"
        page = dict(await self.request("GET", path, params={"after_seq": after_seq, "limit": limit}))
        page["messages"] = await self._decrypted(page["messages"])
        return page

    async def changes_since(self, conversation_id: str, after_seq: int) -> tuple[list[JSON], int]:
        """Every change after ``after_seq`` (all pages) and the seq it brings you up to."""
        window = await self.changes_window(conversation_id, after_seq)
        return window.messages, window.last_seq

    async def changes_window(self, conversation_id: str, after_seq: int) -> ChangesWindow:
        """Every change after ``after_seq`` (all pages), the seq it brings you up to, and
        ``expired_through_seq``: retention deleted every message at or below it."""
        collected: list[JSON] = []
        position = after_seq
        while True:
            page = await self.changes(conversation_id, position)
            collected.extend(page["messages"])
            position = int(page["next_after_seq"])
            if not page["has_more"]:
                return ChangesWindow(
                    collected, int(page["last_seq"]), int(page.get("expired_through_seq", 0))
                )

    # --- data lifecycle (docs/lifecycle.md)

    async def set_retention(self, conversation_id: str, days: int | None) -> JSON:
        """A group's message retention in days (None: the site policy); admins only."""
        path = f"/api/v1/conversations/{_segment(conversation_id)}/retention"
        body = await self.request("PUT", path, json={"retention_days": days})
        return dict(body["conversation"])

    async def request_export(self, conversation_id: str | None = None) -> JSON:
        """Start an export of your data (or of a group you administer); poll ``export``."""
        path = (
            "/api/v1/users/me/export"
            if conversation_id is None
            else f"/api/v1/conversations/{_segment(conversation_id)}/export"
        )
        return dict((await self.request("POST", path))["export"])

    async def export(self, export_id: str) -> JSON:
        path = f"/api/v1/users/me/exports/{_segment(export_id)}"
        return dict((await self.request("GET", path))["export"])

    async def download_export(self, export: JSON) -> bytes:
        """The ZIP of a ``ready`` export (its signed link needs no token)."""
        response = await self._http.get(str(export["download_url"]))
        if response.status_code != 200:
            self._decode(response)  # raises ApiError with the server's code
        return response.content

    async def delete_account(self, password: str) -> None:
        """Erase your account (docs/lifecycle.md "Erasure"); this client is signed out."""
        await self.request("DELETE", "/api/v1/users/me", json={"password": password})

    async def message(self, message_id: str) -> JSON:
        found = dict(
            (await self.request("GET", f"/api/v1/messages/{_segment(message_id)}"))["message"]
        )
        return (await self._decrypted([found]))[0]

    async def edit_message(self, message_id: str, content: str) -> JSON:
        path = f"/api/v1/messages/{_segment(message_id)}"
        body: JSON = {"content": content}
        if self.e2ee is not None:
            current = dict((await self.request("GET", path))["message"])
            if current.get("e2ee"):
                body = await self.e2ee.encrypt(current["conversation_id"], content)
        edited = dict((await self.request("PATCH", path, json=body))["message"])
        return (await self._decrypted([edited]))[0]

    async def upload(
        self,
        data: bytes,
        filename: str,
        content_type: str = "application/octet-stream",
        *,
        encrypted: bool = False,
    ) -> JSON:
        """``POST /api/v1/uploads``; ``encrypted``: an opaque client-encrypted blob."""
        token = await self.access_token()
        response = await self._http.post(
            "/api/v1/uploads",
            params={"encrypted": "true"} if encrypted else None,
            files={"file": (filename, data, content_type)},
            headers={"Authorization": f"Bearer {token}"},
        )
        return dict(self._decode(response)["attachment"])

    async def send_file(
        self,
        conversation_id: str,
        data: bytes,
        filename: str,
        content_type: str = "application/octet-stream",
        *,
        text: str = "",
    ) -> JSON:
        """Upload and send a file; in an encrypted conversation the file is encrypted
        first and its key travels in the encrypted message (``e2ee_attachments``)."""
        if self.e2ee is None or not await self.e2ee.is_encrypted(conversation_id):
            attachment = await self.upload(data, filename, content_type)
            path = f"/api/v1/conversations/{_segment(conversation_id)}/messages"
            body = {"content": text, "attachment_ids": [attachment["id"]], "client_msg_id": uuid.uuid4().hex}
            return dict((await self.request("POST", path, json=body))["message"])
        from parley.client.e2ee.files import encrypt_file

        blob, info = encrypt_file(data)
        attachment = await self.upload(blob, "encrypted.bin", encrypted=True)
        described = info | {"id": attachment["id"], "name": filename, "content_type": content_type}
        sealed = await self.e2ee.encrypt(conversation_id, text, [described])
        path = f"/api/v1/conversations/{_segment(conversation_id)}/messages"
        body = sealed | {"attachment_ids": [attachment["id"]], "client_msg_id": uuid.uuid4().hex}
        message = dict((await self.request("POST", path, json=body))["message"])
        return message | {"content": text, "e2ee_attachments": [described], "decrypted": True}

    async def download_file(self, message: JSON, index: int = 0) -> bytes:
        """An attachment's bytes; decrypted when the (decrypted) message carries its key."""
        token = await self.access_token()
        if message.get("e2ee_attachments"):
            info = message["e2ee_attachments"][index]
            path = f"/api/v1/attachments/{_segment(info['id'])}/original"
        else:
            info = None
            path = f"/api/v1/attachments/{_segment(message['attachments'][index]['id'])}/original"
        response = await self._http.get(path, headers={"Authorization": f"Bearer {token}"})
        if not response.is_success:
            self._decode(response)
        if info is None:
            return response.content
        from parley.client.e2ee.files import decrypt_file

        return decrypt_file(response.content, info)

    async def delete_message(self, message_id: str) -> JSON:
        path = f"/api/v1/messages/{_segment(message_id)}"
        return dict((await self.request("DELETE", path))["message"])

    async def add_reaction(self, message_id: str, emoji: str) -> JSON:
        path = f"/api/v1/messages/{_segment(message_id)}/reactions/{_segment(emoji)}"
        return dict((await self.request("PUT", path))["message"])

    async def remove_reaction(self, message_id: str, emoji: str) -> JSON:
        path = f"/api/v1/messages/{_segment(message_id)}/reactions/{_segment(emoji)}"
        return dict((await self.request("DELETE", path))["message"])

    async def receipts(self, message_id: str) -> JSON:
        return dict(await self.request("GET", f"/api/v1/messages/{_segment(message_id)}/receipts"))

    # --- threads, pins, forwarding (DESIGN §6.5)

    async def thread(self, root_id: str, *, limit: int = 50) -> JSON:
        """``{root, messages, has_more, state}``: the root and its latest replies."""
        path = f"/api/v1/messages/{_segment(root_id)}/thread"
        return dict(await self.request("GET", path, params={"limit": limit}))

    async def follow_thread(self, root_id: str, follow: bool = True) -> JSON:
        path = f"/api/v1/messages/{_segment(root_id)}/thread/follow"
        return dict((await self.request("PUT" if follow else "DELETE", path))["state"])

    async def mark_thread_read(self, root_id: str, seq: int) -> JSON:
        path = f"/api/v1/messages/{_segment(root_id)}/thread/read"
        return dict((await self.request("POST", path, json={"seq": seq}))["state"])

    async def followed_threads(self, *, unread_only: bool = False) -> list[JSON]:
        params = {"unread_only": "true" if unread_only else "false"}
        return list((await self.request("GET", "/api/v1/threads", params=params))["threads"])

    async def pin(self, message_id: str, pinned: bool = True) -> JSON:
        path = f"/api/v1/messages/{_segment(message_id)}/pin"
        return dict((await self.request("PUT" if pinned else "DELETE", path))["message"])

    async def pins(self, conversation_id: str) -> list[JSON]:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/pins"
        return list((await self.request("GET", path))["pins"])

    async def forward(self, message_id: str, conversation_ids: list[str]) -> list[JSON]:
        path = f"/api/v1/messages/{_segment(message_id)}/forward"
        body = {"conversation_ids": conversation_ids}
        return list((await self.request("POST", path, json=body))["messages"])

    # --- public groups and invite links (DESIGN §6.3)

    async def directory(self, q: str = "") -> list[JSON]:
        result = await self.request("GET", "/api/v1/conversations/directory", params={"q": q})
        return list(result["conversations"])

    async def join(self, conversation_id: str) -> JSON:
        path = f"/api/v1/conversations/{_segment(conversation_id)}/join"
        return dict((await self.request("POST", path))["conversation"])

    async def create_invite(
        self, conversation_id: str, *, expires_in_seconds: int | None = 7 * 86400, max_uses: int | None = None
    ) -> JSON:
        """``{id, url, token, expires_at, max_uses, uses, ...}``; the token is shown only now."""
        path = f"/api/v1/conversations/{_segment(conversation_id)}/invites"
        body = {"expires_in_seconds": expires_in_seconds, "max_uses": max_uses}
        return dict((await self.request("POST", path, json=body))["invite"])

    async def join_by_invite(self, token: str) -> JSON:
        path = f"/api/v1/invites/{_segment(token)}/join"
        return dict((await self.request("POST", path))["conversation"])

    # --- contacts and blocks

    async def contacts(self, status: str = "all") -> list[JSON]:
        return list(
            (await self.request("GET", "/api/v1/contacts", params={"status": status}))["contacts"]
        )

    async def request_contact(self, user_id: str) -> JSON:
        result = await self.request("POST", "/api/v1/contacts", json={"user_id": user_id})
        return dict(result["contact"])

    async def accept_contact(self, user_id: str) -> JSON:
        result = await self.request("POST", f"/api/v1/contacts/{_segment(user_id)}/accept")
        return dict(result["contact"])

    async def decline_contact(self, user_id: str) -> None:
        await self.request("POST", f"/api/v1/contacts/{_segment(user_id)}/decline")

    async def remove_contact(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/contacts/{_segment(user_id)}")

    async def blocks(self) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/blocks"))["blocks"])

    async def block(self, user_id: str) -> None:
        await self.request("POST", "/api/v1/blocks", json={"user_id": user_id})

    async def unblock(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/blocks/{_segment(user_id)}")

    # --- search

    async def search(
        self,
        q: str,
        *,
        conversation_id: str | None = None,
        sender_id: str | None = None,
        after: str | None = None,
        before: str | None = None,
        has: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> JSON:
        params = {
            "q": q,
            "conversation_id": conversation_id,
            "sender_id": sender_id,
            "after": after,
            "before": before,
            "has": has,
            "cursor": cursor,
            "limit": limit,
        }
        return dict(await self.request("GET", "/api/v1/search", params=params))
