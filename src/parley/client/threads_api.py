"""Threads, pins and forwarding in the REST client (DESIGN §6.5).

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

from parley.client.requester import JSON, Requester, segment


class ThreadsApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    async def thread(self: Requester, root_id: str, *, limit: int = 50) -> JSON:
        """``{root, messages, has_more, state}``: the root and its latest replies."""
        path = f"/api/v1/messages/{segment(root_id)}/thread"
        return dict(await self.request("GET", path, params={"limit": limit}))

    async def follow_thread(self: Requester, root_id: str, follow: bool = True) -> JSON:
        path = f"/api/v1/messages/{segment(root_id)}/thread/follow"
        return dict((await self.request("PUT" if follow else "DELETE", path))["state"])

    async def mark_thread_read(self: Requester, root_id: str, seq: int) -> JSON:
        path = f"/api/v1/messages/{segment(root_id)}/thread/read"
        return dict((await self.request("POST", path, json={"seq": seq}))["state"])

    async def followed_threads(self: Requester, *, unread_only: bool = False) -> list[JSON]:
        params = {"unread_only": "true" if unread_only else "false"}
        return list((await self.request("GET", "/api/v1/threads", params=params))["threads"])

    async def pin(self: Requester, message_id: str, pinned: bool = True) -> JSON:
        path = f"/api/v1/messages/{segment(message_id)}/pin"
        return dict((await self.request("PUT" if pinned else "DELETE", path))["message"])

    async def pins(self: Requester, conversation_id: str) -> list[JSON]:
        path = f"/api/v1/conversations/{segment(conversation_id)}/pins"
        return list((await self.request("GET", path))["pins"])

    async def forward(self: Requester, message_id: str, conversation_ids: list[str]) -> list[JSON]:
        path = f"/api/v1/messages/{segment(message_id)}/forward"
        body = {"conversation_ids": conversation_ids}
        return list((await self.request("POST", path, json=body))["messages"])
