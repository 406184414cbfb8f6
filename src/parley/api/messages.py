"""``/api/v1/messages/{id}``: edit, delete, reactions, receipts, pins, forwarding."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


class EditBody(RequestModel):
    content: str = Field(default="", max_length=50_000)
    # An encrypted message is edited with new ciphertext (DESIGN §6.1).
    ciphertext: str | None = Field(default=None, max_length=1_000_000)
    e2ee: dict[str, Any] | None = None


class ForwardBody(RequestModel):
    # The service allows 10 (services.forwarding.MAX_TARGETS); this caps parsing.
    conversation_ids: list[Id] = Field(min_length=1, max_length=100)


@router.get("/{message_id}")
async def get_message(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    message = await services.messages.get(caller.user_id, message_id)
    return {"message": message.to_public()}


@router.patch("/{message_id}")
async def edit_message(
    message_id: Id, body: EditBody, caller: Caller, services: Services
) -> dict[str, Any]:
    message = await services.messages.edit(
        caller.user_id, message_id, body.content, ciphertext=body.ciphertext, e2ee=body.e2ee
    )
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


@router.put("/{message_id}/pin")
async def pin(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """Pin in its conversation (idempotent); a system line says who pinned it."""
    message = await services.pins.pin(caller.user_id, message_id)
    return {"message": message.to_public()}


@router.delete("/{message_id}/pin")
async def unpin(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    message = await services.pins.unpin(caller.user_id, message_id)
    return {"message": message.to_public()}


@router.post("/{message_id}/forward", status_code=201)
async def forward(
    message_id: Id, body: ForwardBody, caller: Caller, services: Services
) -> JSONResponse:
    """A copy in each conversation given (the caller must be in all of them), attributed
    to the original with ``forwarded_from``; files are shared, not copied."""
    sent = await services.forwarding.forward(caller.user_id, message_id, body.conversation_ids)
    return JSONResponse({"messages": [m.to_public() for m in sent]}, status_code=201)
