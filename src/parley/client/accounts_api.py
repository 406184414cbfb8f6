"""The accounts part of the REST client: registering, the password, login sessions, and
finding users (DESIGN §2 "REST API", §6.3). Logging in and out, which change the client's
own tokens and user, are the client's (``parley.client.rest``).

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

from parley.client.requester import JSON, Requester, segment


class AccountsApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    # --- registration, password and sessions

    async def register(self: Requester, username: str, password: str, display_name: str | None = None) -> JSON:
        body = {"username": username, "password": password, "display_name": display_name}
        result = await self.request("POST", "/api/v1/auth/register", json=body, authenticated=False)
        return dict(result["user"])

    async def change_password(self: Requester, current_password: str, new_password: str) -> int:
        """Change the password; every other session is signed out. How many were."""
        body = {"current_password": current_password, "new_password": new_password}
        result = await self.request("POST", "/api/v1/users/me/password", json=body)
        return int(result["sessions_revoked"])

    async def sessions(self: Requester) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/sessions"))["sessions"])

    async def revoke_session(self: Requester, session_id: str) -> None:
        await self.request("DELETE", f"/api/v1/sessions/{segment(session_id)}")

    # --- users

    async def get_user(self: Requester, user_id: str) -> JSON:
        return dict((await self.request("GET", f"/api/v1/users/{segment(user_id)}"))["user"])

    async def search_users(self: Requester, q: str, *, limit: int = 20) -> list[JSON]:
        result = await self.request("GET", "/api/v1/users", params={"q": q, "limit": limit})
        return list(result["users"])
