"""``/api/v1/contacts`` and ``/api/v1/blocks``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1", tags=["contacts"])


class UserRef(RequestModel):
    user_id: Id


@router.get("/contacts")
async def list_contacts(
    caller: Caller,
    services: Services,
    status_: Annotated[str, Query(alias="status", max_length=20)] = "all",
) -> dict[str, Any]:
    """``status``: all, accepted, incoming (requests to you), outgoing (your requests)."""
    found = await services.contacts.list(caller.user_id, status_)
    return {"contacts": [contact.to_public() for contact in found]}


@router.post("/contacts", status_code=status.HTTP_201_CREATED)
async def request_contact(body: UserRef, caller: Caller, services: Services) -> dict[str, Any]:
    state = await services.contacts.request(caller.user_id, body.user_id)
    return {"contact": state.to_public()}


@router.post("/contacts/{user_id}/accept")
async def accept_contact(user_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    state = await services.contacts.accept(caller.user_id, user_id)
    return {"contact": state.to_public()}


@router.post("/contacts/{user_id}/decline", status_code=204)
async def decline_contact(user_id: Id, caller: Caller, services: Services) -> Response:
    await services.contacts.remove(caller.user_id, user_id)
    return Response(status_code=204)


@router.delete("/contacts/{user_id}", status_code=204)
async def remove_contact(user_id: Id, caller: Caller, services: Services) -> Response:
    """Remove a contact, or cancel / decline a pending request."""
    await services.contacts.remove(caller.user_id, user_id)
    return Response(status_code=204)


@router.get("/blocks", tags=["blocks"])
async def list_blocks(caller: Caller, services: Services) -> dict[str, Any]:
    found = await services.contacts.list_blocks(caller.user_id)
    return {"blocks": [blocked.to_public() for blocked in found]}


@router.post("/blocks", status_code=204, tags=["blocks"])
async def block(body: UserRef, caller: Caller, services: Services) -> Response:
    await services.contacts.block(caller.user_id, body.user_id)
    return Response(status_code=204)


@router.delete("/blocks/{user_id}", status_code=204, tags=["blocks"])
async def unblock(user_id: Id, caller: Caller, services: Services) -> Response:
    await services.contacts.unblock(caller.user_id, user_id)
    return Response(status_code=204)
