"""``/api/v1/bots`` (DESIGN §6.6): a user's bot accounts and their tokens.

A token is shown once, in the answer that created or rotated it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from parley.api.avatars import receive_picture
from parley.api.deps import Caller, RequestModel, Services
from parley.api.uploads import UPLOAD_BODY_SCHEMA
from parley.errors import Forbidden
from parley.fields import Id
from parley.services.auth import Principal

router = APIRouter(prefix="/api/v1/bots", tags=["integrations"])


class BotBody(RequestModel):
    username: str = Field(max_length=100)
    display_name: str | None = Field(default=None, max_length=200)


def people_only(caller: Principal) -> None:
    """Integrations are managed by people (a bot token never reaches here: bot_scope)."""
    if caller.is_bot:
        raise Forbidden("Bots cannot manage integrations")


@router.post("", status_code=201)
async def create_bot(body: BotBody, caller: Caller, services: Services) -> dict[str, Any]:
    people_only(caller)
    bot, token = await services.bots.create(caller.user_id, body.username, body.display_name)
    return {"bot": bot.to_public(), "token": token}


@router.get("")
async def list_bots(caller: Caller, services: Services) -> dict[str, Any]:
    return {"bots": [bot.to_public() for bot in await services.bots.list(caller.user_id)]}


@router.get("/{bot_id}")
async def get_bot(bot_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    return {"bot": (await services.bots.get(caller.user_id, bot_id)).to_public()}


class BotPatch(RequestModel):
    display_name: str = Field(max_length=200)


@router.patch("/{bot_id}")
async def rename_bot(bot_id: Id, body: BotPatch, caller: Caller, services: Services) -> dict[str, Any]:
    return {"bot": (await services.bots.rename(caller.user_id, bot_id, body.display_name)).to_public()}


@router.put("/{bot_id}/avatar", openapi_extra=UPLOAD_BODY_SCHEMA)
async def set_bot_picture(bot_id: Id, request: Request, caller: Caller, services: Services) -> Response:
    """The bot's picture (its owner; multipart field ``file``: JPEG, PNG, GIF or WebP),
    cropped to a square like a profile picture; ``{bot}`` with its ``avatar`` URLs."""
    people_only(caller)
    bot = await receive_picture(
        request,
        services,
        lambda received, part: services.bots.set_picture(
            caller.user_id, bot_id, received, filename=part.filename, declared_type=part.declared_type
        ),
    )
    if bot is None:
        return Response(status_code=400)
    return JSONResponse({"bot": bot.to_public()})


@router.delete("/{bot_id}/avatar")
async def remove_bot_picture(bot_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """Back to initials."""
    people_only(caller)
    bot = await services.bots.remove_picture(caller.user_id, bot_id)
    return {"bot": bot.to_public()}


@router.post("/{bot_id}/token")
async def rotate_token(bot_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    bot, token = await services.bots.rotate_token(caller.user_id, bot_id)
    return {"bot": bot.to_public(), "token": token}


@router.delete("/{bot_id}", status_code=204)
async def delete_bot(bot_id: Id, caller: Caller, services: Services) -> Response:
    await services.bots.delete(caller.user_id, bot_id)
    return Response(status_code=204)
