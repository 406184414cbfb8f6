"""Public groups and invite links (DESIGN §6.3): ``/api/v1/conversations/directory``,
``/api/v1/conversations/by-slug/{slug}``, ``/api/v1/conversations/{id}/join``,
``/api/v1/conversations/{id}/invites`` and ``/api/v1/invites/{token}``.

Included before the conversations router, so ``/conversations/directory`` is not read as
a conversation id; ``by-slug`` comes before ``{id}/invites`` here, so a group whose slug is
``invites`` is found by it (tests/integration/test_route_table.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id
from parley.services.invites import DEFAULT_TTL, MAX_TTL_SECONDS, MAX_USES

router = APIRouter(prefix="/api/v1", tags=["groups"])


class InviteBody(RequestModel):
    # Seconds until the link expires; null: never. Default: a week.
    expires_in_seconds: int | None = Field(
        default=int(DEFAULT_TTL.total_seconds()), ge=60, le=MAX_TTL_SECONDS
    )
    max_uses: int | None = Field(default=None, ge=1, le=MAX_USES)


def invite_url(request: Request, services: Services, token: str) -> str:
    """The link to share: under ``PARLEY_PUBLIC_URL``, else the address this request came
    to (DESIGN §6.0)."""
    base = services.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/invite/{token}"


@router.get("/conversations/by-slug/{slug}", tags=["conversations"])
async def get_by_slug(slug: str, caller: Caller, services: Services) -> dict[str, Any]:
    view = await services.conversations.get_by_slug(caller.user_id, slug)
    return {"conversation": view.to_public()}


@router.get("/conversations/directory")
async def directory(
    caller: Caller,
    services: Services,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Public groups, the most recently active first, with ``joined`` for the caller."""
    return await services.directory.list(caller.user_id, q=q, limit=limit)


@router.post("/conversations/{conversation_id}/join")
async def join(conversation_id: Id, caller: Caller, services: Services) -> JSONResponse:
    """Join a public group: 201 when the caller is new in it, 200 when already a member."""
    conversation, joined = await services.directory.join(caller.user_id, conversation_id)
    return JSONResponse({"conversation": conversation.to_public()}, status_code=201 if joined else 200)


@router.post("/conversations/{conversation_id}/invites", status_code=201)
async def create_invite(
    conversation_id: Id, body: InviteBody, request: Request, caller: Caller, services: Services
) -> dict[str, Any]:
    """A new invite link (the group's admins). ``url`` and ``token`` are shown only now."""
    invite, token = await services.invites.create(
        caller.user_id,
        conversation_id,
        expires_in_seconds=body.expires_in_seconds,
        max_uses=body.max_uses,
    )
    return {"invite": invite | {"token": token, "url": invite_url(request, services, token)}}


@router.get("/conversations/{conversation_id}/invites")
async def list_invites(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    return {"invites": await services.invites.list(caller.user_id, conversation_id)}


@router.delete("/conversations/{conversation_id}/invites/{invite_id}", status_code=204)
async def revoke_invite(
    conversation_id: Id, invite_id: Id, caller: Caller, services: Services
) -> Response:
    await services.invites.revoke(caller.user_id, conversation_id, invite_id)
    return Response(status_code=204)


@router.get("/invites/{token}")
async def preview_invite(token: str, caller: Caller, services: Services) -> dict[str, Any]:
    """The group an invite link opens (name, topic, size), for the join page."""
    return await services.invites.preview(caller.user_id, token)


@router.post("/invites/{token}/join")
async def join_by_invite(token: str, caller: Caller, services: Services) -> JSONResponse:
    """Join by link: 201 when new in the group, 200 when already a member (no use taken)."""
    conversation, joined = await services.invites.join(caller.user_id, token)
    return JSONResponse({"conversation": conversation.to_public()}, status_code=201 if joined else 200)
