"""Notification routes (DESIGN §6.2): per-conversation level and mute, the user's defaults,
Web Push subscriptions and the VAPID key, and the user's email address."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from parley.api.deps import Caller, RequestModel, Services
from parley.services.notification_settings import UNCHANGED

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Level = Literal["all", "mentions", "none"]


class ConversationSettingsBody(RequestModel):
    # null: follow the user's default. Omitted: unchanged.
    notify: Level | None = None
    # ISO 8601 with an offset, "forever", or null to unmute. Omitted: unchanged.
    muted_until: str | None = Field(default=None, max_length=40)


class DefaultsBody(RequestModel):
    notify_default: Level | None = None
    email_digest: StrictBool | None = None


class SubscriptionKeys(RequestModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=200)


class SubscriptionBody(RequestModel):
    """``PushSubscription.toJSON()`` as the browser gives it (unknown fields ignored:
    browsers add some)."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(max_length=2048)
    expirationTime: float | None = Field(default=None)  # noqa: N815 - the browser's name
    keys: SubscriptionKeys


class EmailBody(RequestModel):
    address: str = Field(max_length=1000)


class TokenBody(RequestModel):
    token: str = Field(max_length=4096)


def _sent(body: BaseModel, name: str) -> object:
    return getattr(body, name) if name in body.model_fields_set else UNCHANGED


@router.patch("/conversations/{conversation_id}/settings", tags=["conversations"])
async def patch_conversation_settings(
    conversation_id: str, body: ConversationSettingsBody, caller: Caller, services: Services
) -> dict[str, Any]:
    """The caller's notification level and mute for one conversation."""
    result = await services.notifications.settings.update_conversation(
        caller.user_id,
        conversation_id,
        notify=_sent(body, "notify"),
        muted_until=_sent(body, "muted_until"),
    )
    return {"settings": result.to_public()}


@router.get("/users/me/notifications", tags=["users"])
async def get_notification_defaults(caller: Caller, services: Services) -> dict[str, Any]:
    defaults = await services.notifications.settings.defaults(caller.user_id)
    return {"notifications": defaults.to_public()}


@router.patch("/users/me/notifications", tags=["users"])
async def patch_notification_defaults(
    body: DefaultsBody, caller: Caller, services: Services
) -> dict[str, Any]:
    defaults = await services.notifications.settings.update_defaults(
        caller.user_id,
        notify_default=_sent(body, "notify_default"),
        email_digest=_sent(body, "email_digest"),
    )
    return {"notifications": defaults.to_public()}


# --- Web Push


@router.get("/push/vapid-public-key", tags=["push"])
async def vapid_public_key(services: Services) -> dict[str, Any]:
    """The ``applicationServerKey`` for ``pushManager.subscribe`` (base64url, P-256)."""
    return {"public_key": services.notifications.vapid.public_key}


@router.post("/push/subscriptions", status_code=status.HTTP_201_CREATED, tags=["push"])
async def add_subscription(
    body: SubscriptionBody, request: Request, caller: Caller, services: Services
) -> JSONResponse:
    """201 for a new subscription, 200 when this endpoint was registered before."""
    subscription, created = await services.notifications.subscriptions.subscribe(
        caller.user_id,
        caller.session_id,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        user_agent=request.headers.get("user-agent", ""),
    )
    return JSONResponse(
        {"subscription": subscription.to_public()}, status_code=201 if created else 200
    )


@router.get("/push/subscriptions", tags=["push"])
async def list_subscriptions(caller: Caller, services: Services) -> dict[str, Any]:
    found = await services.notifications.subscriptions.list_for(caller.user_id)
    return {"subscriptions": [s.to_public() for s in found]}


@router.delete("/push/subscriptions/{subscription_id}", status_code=204, tags=["push"])
async def delete_subscription(
    subscription_id: str, caller: Caller, services: Services
) -> Response:
    await services.notifications.subscriptions.unsubscribe(caller.user_id, subscription_id)
    return Response(status_code=204)


# --- email address


@router.get("/users/me/email", tags=["users"])
async def get_email(caller: Caller, services: Services) -> dict[str, Any]:
    address = await services.notifications.email_addresses.get(caller.user_id)
    return {"email": address.to_public() if address else None}


@router.put("/users/me/email", status_code=status.HTTP_202_ACCEPTED, tags=["users"])
async def put_email(body: EmailBody, caller: Caller, services: Services) -> JSONResponse:
    """202: a verification link is on its way (200 when it is the address already verified)."""
    address = await services.notifications.email_addresses.set(caller.user_id, body.address)
    return JSONResponse({"email": address.to_public()}, status_code=200 if address.verified else 202)


@router.delete("/users/me/email", status_code=204, tags=["users"])
async def delete_email(caller: Caller, services: Services) -> Response:
    await services.notifications.email_addresses.remove(caller.user_id)
    return Response(status_code=204)


@router.post("/email/verify", tags=["users"])
async def verify_email(body: TokenBody, services: Services) -> dict[str, Any]:
    """Verify an address with the token of its link (no login needed: the token is it)."""
    _user_id, address = await services.notifications.email_addresses.verify(body.token)
    return {"email": address.to_public()}
