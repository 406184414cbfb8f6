"""The integrations part of the REST client (DESIGN §6.6): bots, webhooks, slash commands.

A mixin of :class:`parley.client.ParleyClient`, kept apart so that the core client stays
one screenful per concern.
"""

from __future__ import annotations

from typing import Any

from parley.client.requester import JSON, Requester, segment


def _hooks(conversation_id: str) -> str:
    return f"/api/v1/conversations/{segment(conversation_id)}/webhooks"


class IntegrationsApi:
    # Every method takes ``self: Requester``: the class it is mixed into supplies ``request``
    # (mypy checks it), and nothing here pretends to implement it.

    # --- bots

    async def create_bot(self: Requester, username: str, display_name: str | None = None) -> tuple[JSON, str]:
        """A new bot and its token (shown only now: keep it)."""
        body = await self.request("POST", "/api/v1/bots", json={"username": username, "display_name": display_name})
        return dict(body["bot"]), str(body["token"])

    async def bots(self: Requester) -> list[JSON]:
        return list((await self.request("GET", "/api/v1/bots"))["bots"])

    async def rename_bot(self: Requester, bot_id: str, display_name: str) -> JSON:
        body = {"display_name": display_name}
        return dict((await self.request("PATCH", f"/api/v1/bots/{segment(bot_id)}", json=body))["bot"])

    async def rotate_bot_token(self: Requester, bot_id: str) -> str:
        return str((await self.request("POST", f"/api/v1/bots/{segment(bot_id)}/token"))["token"])

    async def delete_bot(self: Requester, bot_id: str) -> None:
        await self.request("DELETE", f"/api/v1/bots/{segment(bot_id)}")

    # --- webhooks

    async def create_webhook(self: Requester, conversation_id: str, kind: str, **fields: Any) -> JSON:
        """``kind`` "incoming" (answer has its ``url``) or "outgoing" (``url=``, optional
        ``triggers=``; answer has the signing ``secret``)."""
        body = {"kind": kind, **{k: v for k, v in fields.items() if v is not None}}
        return dict((await self.request("POST", _hooks(conversation_id), json=body))["webhook"])

    async def webhooks(self: Requester, conversation_id: str) -> list[JSON]:
        return list((await self.request("GET", _hooks(conversation_id)))["webhooks"])

    async def delete_webhook(self: Requester, conversation_id: str, webhook_id: str) -> None:
        await self.request("DELETE", f"{_hooks(conversation_id)}/{segment(webhook_id)}")

    async def webhook_deliveries(self: Requester, conversation_id: str, webhook_id: str) -> list[JSON]:
        path = f"{_hooks(conversation_id)}/{segment(webhook_id)}/deliveries"
        return list((await self.request("GET", path))["deliveries"])

    # --- slash commands

    async def register_command(
        self: Requester, name: str, url: str, *, conversation_id: str | None = None, description: str = ""
    ) -> JSON:
        body = {"name": name, "url": url, "conversation_id": conversation_id, "description": description}
        return dict((await self.request("POST", "/api/v1/commands", json=body))["command"])

    async def commands(self: Requester, conversation_id: str | None = None) -> list[JSON]:
        params = {"conversation_id": conversation_id}
        return list((await self.request("GET", "/api/v1/commands", params=params))["commands"])

    async def run_command(self: Requester, conversation_id: str, text: str) -> JSON:
        """Run ``/name args``: ``{response_type, text, message, error}``."""
        path = f"/api/v1/conversations/{segment(conversation_id)}/commands"
        return dict(await self.request("POST", path, json={"text": text}))
