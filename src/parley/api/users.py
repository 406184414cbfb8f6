"""``/api/v1/users``: the caller's profile, lookup and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class ProfilePatch(RequestModel):
    display_name: str | None = None


@router.get("/me")
async def get_me(caller: Caller, services: Services) -> dict[str, Any]:
    user = await services.accounts.get(caller.user_id)
    return {"user": user.to_private()}


@router.patch("/me")
async def patch_me(body: ProfilePatch, caller: Caller, services: Services) -> dict[str, Any]:
    user = await services.accounts.update_profile(caller.user_id, display_name=body.display_name)
    return {"user": user.to_private()}


@router.get("")
async def search_users(
    caller: Caller,
    services: Services,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    found = await services.accounts.search(q, limit=limit)
    return {"users": [u.to_public() for u in found]}


@router.get("/{user_id}")
async def get_user(user_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    user = await services.accounts.get(user_id)
    return {"user": user.to_public()}
