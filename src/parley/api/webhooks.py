"""Webhook routes (DESIGN §6.6): managing a conversation's webhooks under
``/api/v1/conversations/{id}/webhooks``, and ``POST /hooks/{id}/{secret}`` where incoming
webhooks post (no other credential: the URL is the secret)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field, StrictBool

from parley.api.bots import people_only
from parley.api.deps import Caller, RequestModel, Services
from parley.errors import ValidationFailed
from parley.fields import BAD_TEXT_MESSAGE, Id, text_problem

router = APIRouter(prefix="/api/v1/conversations/{conversation_id}/webhooks", tags=["integrations"])
hooks_router = APIRouter(tags=["integrations"])

Word = Annotated[str, Field(max_length=64)]


class WebhookBody(RequestModel):
    kind: Literal["incoming", "outgoing"]
    name: str | None = Field(default=None, max_length=200)
    bot_id: Id | None = None
    url: str | None = Field(default=None, max_length=4096)
    triggers: list[Word] | None = Field(default=None, max_length=100)


class WebhookPatch(RequestModel):
    enabled: StrictBool | None = None
    name: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=4096)
    triggers: list[Word] | None = Field(default=None, max_length=100)


def hooks_base_url(request: Request, services: Services) -> str:
    return services.settings.public_url or str(request.base_url).rstrip("/")


@router.post("", status_code=201)
async def create_webhook(
    conversation_id: Id, body: WebhookBody, caller: Caller, services: Services, request: Request
) -> dict[str, Any]:
    people_only(caller)
    created = await services.webhooks.create(
        caller.user_id,
        conversation_id,
        body.kind,
        name=body.name,
        bot_id=body.bot_id,
        url=body.url,
        triggers=body.triggers,
    )
    return {"webhook": created.to_public(hooks_base_url(request, services))}


@router.get("")
async def list_webhooks(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    found = await services.webhooks.list(caller.user_id, conversation_id)
    return {"webhooks": [hook.to_public() for hook in found]}


@router.get("/{webhook_id}")
async def get_webhook(
    conversation_id: Id, webhook_id: Id, caller: Caller, services: Services
) -> dict[str, Any]:
    return {"webhook": (await services.webhooks.get(caller.user_id, conversation_id, webhook_id)).to_public()}


@router.patch("/{webhook_id}")
async def patch_webhook(
    conversation_id: Id, webhook_id: Id, body: WebhookPatch, caller: Caller, services: Services
) -> dict[str, Any]:
    hook = await services.webhooks.update(
        caller.user_id,
        conversation_id,
        webhook_id,
        enabled=body.enabled,
        name=body.name,
        url=body.url,
        triggers=body.triggers,
    )
    return {"webhook": hook.to_public()}


@router.post("/{webhook_id}/secret")
async def rotate_webhook_secret(
    conversation_id: Id, webhook_id: Id, caller: Caller, services: Services, request: Request
) -> dict[str, Any]:
    created = await services.webhooks.rotate_secret(caller.user_id, conversation_id, webhook_id)
    return {"webhook": created.to_public(hooks_base_url(request, services))}


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(
    conversation_id: Id, webhook_id: Id, caller: Caller, services: Services
) -> Response:
    await services.webhooks.delete(caller.user_id, conversation_id, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def webhook_deliveries(
    conversation_id: Id, webhook_id: Id, caller: Caller, services: Services
) -> dict[str, Any]:
    log = await services.webhooks.deliveries(caller.user_id, conversation_id, webhook_id)
    return {"deliveries": log}


# --- incoming


class TextObject(RequestModel):
    model_config = ConfigDict(extra="ignore")
    text: str | None = Field(default=None, max_length=50_000)


class Block(RequestModel):
    """A Slack block: the text of ``section`` and ``header`` blocks is kept, the rest
    (images, buttons, dividers) is ignored."""

    model_config = ConfigDict(extra="ignore")
    type: str | None = Field(default=None, max_length=64)
    text: TextObject | None = None


class IncomingBody(RequestModel):
    """``{text}``, or a Slack-shaped payload (``text`` and/or ``blocks``; its other fields —
    ``username``, ``icon_emoji``, ``mrkdwn`` ... — ignored)."""

    model_config = ConfigDict(extra="ignore")
    text: str | None = Field(default=None, max_length=50_000)
    blocks: list[Block] | None = Field(default=None, max_length=50)


def incoming_text(body: IncomingBody) -> str:
    if body.text and body.text.strip():
        return body.text
    parts = [
        block.text.text
        for block in body.blocks or []
        if block.type in ("section", "header") and block.text is not None and block.text.text
    ]
    text = "\n\n".join(parts)
    if not text.strip():
        raise ValidationFailed.field("text", "must not be empty")
    if text_problem(text) is not None:
        raise ValidationFailed.field("blocks", BAD_TEXT_MESSAGE)
    return text


@hooks_router.post("/hooks/{webhook_id}/{secret}")
async def post_incoming(
    webhook_id: Id, secret: Annotated[str, Field(max_length=200)], body: IncomingBody, services: Services
) -> dict[str, Any]:
    message = await services.webhooks.post_incoming(webhook_id, secret, incoming_text(body))
    return {"ok": True, "message": message.to_public()}
