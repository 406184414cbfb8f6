"""The data lifecycle in the REST client (docs/lifecycle.md): retention, exports, erasing
one's account. Downloading a ready export is the client's own (``ParleyClient.download_export``).

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

from parley.client.requester import JSON, Requester, segment


class LifecycleApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    async def set_retention(self: Requester, conversation_id: str, days: int | None) -> JSON:
        """A group's message retention in days (None: the site policy); admins only."""
        path = f"/api/v1/conversations/{segment(conversation_id)}/retention"
        body = await self.request("PUT", path, json={"retention_days": days})
        return dict(body["conversation"])

    async def request_export(self: Requester, conversation_id: str | None = None) -> JSON:
        """Start an export of your data (or of a group you administer); poll ``export``."""
        path = (
            "/api/v1/users/me/export"
            if conversation_id is None
            else f"/api/v1/conversations/{segment(conversation_id)}/export"
        )
        return dict((await self.request("POST", path))["export"])

    async def export(self: Requester, export_id: str) -> JSON:
        path = f"/api/v1/users/me/exports/{segment(export_id)}"
        return dict((await self.request("GET", path))["export"])

    async def delete_account(self: Requester, password: str) -> None:
        """Erase your account (docs/lifecycle.md "Erasure"); this client is signed out."""
        await self.request("DELETE", "/api/v1/users/me", json={"password": password})
