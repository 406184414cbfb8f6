"""Contacts and blocks in the REST client.

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

from parley.client.requester import JSON, Requester, segment


class ContactsApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    async def contacts(self: Requester, status: str = "all") -> list[JSON]:
        return list(
            (await self.request("GET", "/api/v1/contacts", params={"status": status}))["contacts"]
        )

    async def request_contact(self: Requester, user_id: str) -> JSON:
        result = await self.request("POST", "/api/v1/contacts", json={"user_id": user_id})
        return dict(result["contact"])

    async def accept_contact(self: Requester, user_id: str) -> JSON:
        result = await self.request("POST", f"/api/v1/contacts/{segment(user_id)}/accept")
        return dict(result["contact"])

    async def decline_contact(self: Requester, user_id: str) -> None:
        await self.request("POST", f"/api/v1/contacts/{segment(user_id)}/decline")

    async def remove_contact(self: Requester, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/contacts/{segment(user_id)}")

    async def blocks(self: Requester) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/blocks"))["blocks"])

    async def block(self: Requester, user_id: str) -> None:
        await self.request("POST", "/api/v1/blocks", json={"user_id": user_id})

    async def unblock(self: Requester, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/blocks/{segment(user_id)}")
