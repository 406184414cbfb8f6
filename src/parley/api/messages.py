"""``/api/v1/messages/{id}``: edit, delete, reactions, receipts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


class EditBody(RequestModel):
    content: str = Field(max_length=50_000)


@router.get("/{message_id}")
async def get_message(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    message = await services.messages.get(caller.user_id, message_id)
    return {"message": message.to_public()}


@router.patch("/{message_id}")
async def edit_message(
    message_id: Id, body: EditBody, caller: Caller, services: Services
) -> dict[str, Any]:
    message = await services.messages.edit(caller.user_id, message_id, body.content)
    return {"message": message.to_public()}


@router.delete("/{message_id}")
async def delete_message(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """Returns the tombstone."""
    message = await services.messages.delete(caller.user_id, message_id)
    return {"message": message.to_public()}


@router.put("/{message_id}/reactions/{emoji}")
async def add_reaction(
    message_id: Id, emoji: str, caller: Caller, services: Services
) -> dict[str, Any]:
    message = await services.reactions.add(caller.user_id, message_id, emoji)
    return {"message": message.to_public()}


@router.delete("/{message_id}/reactions/{emoji}")
async def remove_reaction(
    message_id: Id, emoji: str, caller: Caller, services: Services
) -> dict[str, Any]:
    message = await services.reactions.remove(caller.user_id, message_id, emoji)
    return {"message": message.to_public()}


@router.get("/{message_id}/receipts")
async def receipts(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    receipts = await services.receipts.for_message(caller.user_id, message_id)
    return receipts.to_public()
