"""The conversations part of the REST client: creating, reading and changing conversations,
members and roles, read and delivery marks, public groups and invite links (DESIGN §6.3).

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

from typing import Protocol

from parley.client.requester import JSON, Requester, segment


class _Member(Requester, Protocol):
    """What leaving needs: who this client is, and removing a member."""

    @property
    def user_id(self) -> str: ...

    async def remove_member(self, conversation_id: str, user_id: str) -> None: ...


class ConversationsApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    async def create_direct(self: Requester, user_id: str, *, encrypted: bool | None = None) -> JSON:
        body: JSON = {"type": "direct", "user_id": user_id}
        if encrypted is not None:
            body["encrypted"] = encrypted
        return dict(
            (await self.request("POST", "/api/v1/conversations", json=body))["conversation"]
        )

    async def create_group(
        self: Requester,
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

    async def conversations(self: Requester) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/conversations"))["conversations"])

    async def conversation(self: Requester, conversation_id: str) -> JSON:
        path = f"/api/v1/conversations/{segment(conversation_id)}"
        return dict((await self.request("GET", path))["conversation"])

    async def conversation_by_slug(self: Requester, slug: str) -> JSON:
        path = f"/api/v1/conversations/by-slug/{segment(slug)}"
        return dict((await self.request("GET", path))["conversation"])

    async def update_conversation(
        self: Requester,
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
        path = f"/api/v1/conversations/{segment(conversation_id)}"
        return dict((await self.request("PATCH", path, json=changes))["conversation"])

    async def delete_conversation(self: Requester, conversation_id: str) -> None:
        await self.request("DELETE", f"/api/v1/conversations/{segment(conversation_id)}")

    async def members(self: Requester, conversation_id: str) -> list[JSON]:
        path = f"/api/v1/conversations/{segment(conversation_id)}/members"
        return list((await self.request("GET", path))["members"])

    async def add_members(self: Requester, conversation_id: str, user_ids: list[str]) -> list[str]:
        path = f"/api/v1/conversations/{segment(conversation_id)}/members"
        return list((await self.request("POST", path, json={"user_ids": user_ids}))["added"])

    async def remove_member(self: Requester, conversation_id: str, user_id: str) -> None:
        path = f"/api/v1/conversations/{segment(conversation_id)}/members/{segment(user_id)}"
        await self.request("DELETE", path)

    async def leave(self: _Member, conversation_id: str) -> None:
        await self.remove_member(conversation_id, self.user_id)

    async def set_role(self: Requester, conversation_id: str, user_id: str, role: str) -> None:
        path = f"/api/v1/conversations/{segment(conversation_id)}/members/{segment(user_id)}"
        await self.request("PATCH", path, json={"role": role})

    async def mark_read(self: Requester, conversation_id: str, seq: int) -> JSON:
        path = f"/api/v1/conversations/{segment(conversation_id)}/read"
        return dict(await self.request("POST", path, json={"seq": seq}))

    async def mark_delivered(self: Requester, conversation_id: str, seq: int) -> JSON:
        path = f"/api/v1/conversations/{segment(conversation_id)}/delivered"
        return dict(await self.request("POST", path, json={"seq": seq}))

    # --- public groups and invite links (DESIGN §6.3)

    async def directory(self: Requester, q: str = "") -> list[JSON]:
        result = await self.request("GET", "/api/v1/conversations/directory", params={"q": q})
        return list(result["conversations"])

    async def join(self: Requester, conversation_id: str) -> JSON:
        path = f"/api/v1/conversations/{segment(conversation_id)}/join"
        return dict((await self.request("POST", path))["conversation"])

    async def create_invite(
        self: Requester,
        conversation_id: str,
        *,
        expires_in_seconds: int | None = 7 * 86400,
        max_uses: int | None = None,
    ) -> JSON:
        """``{id, url, token, expires_at, max_uses, uses, ...}``; the token is shown only now."""
        path = f"/api/v1/conversations/{segment(conversation_id)}/invites"
        body = {"expires_in_seconds": expires_in_seconds, "max_uses": max_uses}
        return dict((await self.request("POST", path, json=body))["invite"])

    async def join_by_invite(self: Requester, token: str) -> JSON:
        path = f"/api/v1/invites/{segment(token)}/join"
        return dict((await self.request("POST", path))["conversation"])
