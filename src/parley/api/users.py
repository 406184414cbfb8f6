"""``/api/v1/users``: the caller's profile, lookup and search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class ProfilePatch(RequestModel):
    display_name: str | None = None
    # DESIGN §6.2; also PATCH /api/v1/users/me/notifications.
    notify_default: Literal["all", "mentions", "none"] | None = None


@router.get("/me")
async def get_me(caller: Caller, services: Services) -> dict[str, Any]:
    user = await services.accounts.get(caller.user_id)
    defaults = await services.notifications.settings.defaults(caller.user_id)
    return {"user": user.to_private() | defaults.to_public()}


@router.patch("/me")
async def patch_me(body: ProfilePatch, caller: Caller, services: Services) -> dict[str, Any]:
    if body.notify_default is not None:
        await services.notifications.settings.update_defaults(
            caller.user_id, notify_default=body.notify_default
        )
    user = await services.accounts.update_profile(caller.user_id, display_name=body.display_name)
    defaults = await services.notifications.settings.defaults(caller.user_id)
    return {"user": user.to_private() | defaults.to_public()}


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
