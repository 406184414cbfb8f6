"""The REST client: every route of ``/api/v1`` as a method, with automatic token refresh.

Access tokens live minutes, refresh tokens rotate (DESIGN §2 "REST API"). The client
refreshes shortly before expiry, and once more when the server answers 401
``TOKEN_EXPIRED``; concurrent requests share a single refresh, because presenting a
rotated refresh token twice makes the server revoke the whole session.

This module is the client's own part: its HTTP connection and ``request``, its state (the
tokens, the logged-in user, encryption) and what changes it, and file transfers (which
speak HTTP themselves, not JSON). The other routes are mixins, one per concern, each
naming what it needs of the client (``parley.client.requester``):
``accounts_api``, ``conversations_api``, ``messages_api``, ``threads_api``,
``contacts_api``, ``lifecycle_api``, ``integrations_api``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from parley import __version__
from parley.client.accounts_api import AccountsApi
from parley.client.contacts_api import ContactsApi
from parley.client.conversations_api import ConversationsApi
from parley.client.errors import ApiError
from parley.client.integrations_api import IntegrationsApi
from parley.client.lifecycle_api import LifecycleApi
from parley.client.messages_api import MessagesApi
from parley.client.requester import JSON, segment
from parley.client.threads_api import ThreadsApi
from parley.client.tokens import Tokens

if TYPE_CHECKING:
    from parley.client.e2ee.engine import E2ee

TOKEN_EXPIRED = "TOKEN_EXPIRED"


class ParleyClient(
    AccountsApi, ConversationsApi, MessagesApi, ThreadsApi, ContactsApi, LifecycleApi, IntegrationsApi
):
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

    # --- signing in and out: the client's own tokens, device token and user

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

    async def logout(self) -> None:
        await self.request("POST", "/api/v1/auth/logout")
        self.tokens = None

    async def logout_everywhere(self) -> None:
        await self.request("POST", "/api/v1/auth/logout-all")
        self.tokens = None

    async def me(self) -> JSON:
        self.user = dict((await self.request("GET", "/api/v1/users/me"))["user"])
        return self.user

    async def update_me(self, *, display_name: str | None = None) -> JSON:
        result = await self.request(
            "PATCH", "/api/v1/users/me", json={"display_name": display_name}
        )
        self.user = dict(result["user"])
        return self.user

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

    # --- files: multipart uploads and binary downloads, outside ``request``

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

    async def download_file(self, message: JSON, index: int = 0) -> bytes:
        """An attachment's bytes; decrypted when the (decrypted) message carries its key."""
        token = await self.access_token()
        if message.get("e2ee_attachments"):
            info = message["e2ee_attachments"][index]
            path = f"/api/v1/attachments/{segment(info['id'])}/original"
        else:
            info = None
            path = f"/api/v1/attachments/{segment(message['attachments'][index]['id'])}/original"
        response = await self._http.get(path, headers={"Authorization": f"Bearer {token}"})
        if not response.is_success:
            self._decode(response)
        if info is None:
            return response.content
        from parley.client.e2ee.files import decrypt_file

        return decrypt_file(response.content, info)

    async def download_export(self, export: JSON) -> bytes:
        """The ZIP of a ``ready`` export (its signed link needs no token)."""
        response = await self._http.get(str(export["download_url"]))
        if response.status_code != 200:
            self._decode(response)  # raises ApiError with the server's code
        return response.content
