"""The messages part of the REST client: sending (files too), history and the resume feed,
editing, deleting, reactions, receipts and search.

Sends carry a ``client_msg_id`` (generated when not given) and are retried on transport
errors: the server answers a repeated id with the original message, so a retry never
creates a duplicate. With end-to-end encryption enabled (``ParleyClient.enable_e2ee``),
messages of encrypted conversations are encrypted and decrypted here transparently.

A mixin of :class:`parley.client.ParleyClient`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from parley.client.requester import JSON, Requester, segment

if TYPE_CHECKING:
    from parley.client.e2ee.engine import E2ee

SEND_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ChangesWindow:
    messages: list[JSON]
    last_seq: int
    expired_through_seq: int


class _Messaging(Requester, Protocol):
    """What sending and reading need of the client: its encryption, uploads, the feed."""

    e2ee: E2ee | None

    async def upload(
        self,
        data: bytes,
        filename: str,
        content_type: str = "application/octet-stream",
        *,
        encrypted: bool = False,
    ) -> JSON: ...

    async def changes(self, conversation_id: str, after_seq: int, *, limit: int = 500) -> JSON: ...

    async def changes_window(self, conversation_id: str, after_seq: int) -> ChangesWindow: ...


async def _decrypted(client: _Messaging, messages: list[JSON]) -> list[JSON]:
    return await client.e2ee.decrypt_messages(messages) if client.e2ee is not None else messages


class MessagesApi:
    # Every method takes ``self:`` what it needs of the client (a Protocol): ``ParleyClient``
    # supplies it, mypy checks that it does, and nothing here pretends to implement it.

    async def send_message(
        self: _Messaging,
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
        path = f"/api/v1/conversations/{segment(conversation_id)}/messages"
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
        self: _Messaging,
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
        path = f"/api/v1/conversations/{segment(conversation_id)}/messages"
        page = dict(await self.request("GET", path, params=params))
        page["messages"] = await _decrypted(self, page["messages"])
        return page

    async def changes(self: _Messaging, conversation_id: str, after_seq: int, *, limit: int = 500) -> JSON:
        """One page of the resume feed: ``{messages, last_seq, has_more, next_after_seq}``."""
        path = f"/api/v1/conversations/{segment(conversation_id)}/changes"
        page = dict(await self.request("GET", path, params={"after_seq": after_seq, "limit": limit}))
        page["messages"] = await _decrypted(self, page["messages"])
        return page

    async def changes_since(self: _Messaging, conversation_id: str, after_seq: int) -> tuple[list[JSON], int]:
        """Every change after ``after_seq`` (all pages) and the seq it brings you up to."""
        window = await self.changes_window(conversation_id, after_seq)
        return window.messages, window.last_seq

    async def changes_window(self: _Messaging, conversation_id: str, after_seq: int) -> ChangesWindow:
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

    async def message(self: _Messaging, message_id: str) -> JSON:
        found = dict(
            (await self.request("GET", f"/api/v1/messages/{segment(message_id)}"))["message"]
        )
        return (await _decrypted(self, [found]))[0]

    async def edit_message(self: _Messaging, message_id: str, content: str) -> JSON:
        path = f"/api/v1/messages/{segment(message_id)}"
        body: JSON = {"content": content}
        if self.e2ee is not None:
            current = dict((await self.request("GET", path))["message"])
            if current.get("e2ee"):
                body = await self.e2ee.encrypt(current["conversation_id"], content)
        edited = dict((await self.request("PATCH", path, json=body))["message"])
        return (await _decrypted(self, [edited]))[0]

    async def send_file(
        self: _Messaging,
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
            path = f"/api/v1/conversations/{segment(conversation_id)}/messages"
            body = {"content": text, "attachment_ids": [attachment["id"]], "client_msg_id": uuid.uuid4().hex}
            return dict((await self.request("POST", path, json=body))["message"])
        from parley.client.e2ee.files import encrypt_file

        blob, info = encrypt_file(data)
        attachment = await self.upload(blob, "encrypted.bin", encrypted=True)
        described = info | {"id": attachment["id"], "name": filename, "content_type": content_type}
        sealed = await self.e2ee.encrypt(conversation_id, text, [described])
        path = f"/api/v1/conversations/{segment(conversation_id)}/messages"
        body = sealed | {"attachment_ids": [attachment["id"]], "client_msg_id": uuid.uuid4().hex}
        message = dict((await self.request("POST", path, json=body))["message"])
        return message | {"content": text, "e2ee_attachments": [described], "decrypted": True}

    async def delete_message(self: Requester, message_id: str) -> JSON:
        path = f"/api/v1/messages/{segment(message_id)}"
        return dict((await self.request("DELETE", path))["message"])

    async def add_reaction(self: Requester, message_id: str, emoji: str) -> JSON:
        path = f"/api/v1/messages/{segment(message_id)}/reactions/{segment(emoji)}"
        return dict((await self.request("PUT", path))["message"])

    async def remove_reaction(self: Requester, message_id: str, emoji: str) -> JSON:
        path = f"/api/v1/messages/{segment(message_id)}/reactions/{segment(emoji)}"
        return dict((await self.request("DELETE", path))["message"])

    async def receipts(self: Requester, message_id: str) -> JSON:
        return dict(await self.request("GET", f"/api/v1/messages/{segment(message_id)}/receipts"))

    # --- search

    async def search(
        self: Requester,
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
