"""Slash command routes (DESIGN §6.6): registering custom commands (``/api/v1/commands``),
listing what the composer can complete, and running ``/name args`` in a conversation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from parley.api.bots import people_only
from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id

router = APIRouter(prefix="/api/v1", tags=["integrations"])


class CommandBody(RequestModel):
    name: str = Field(max_length=64)
    url: str = Field(max_length=4096)
    conversation_id: Id | None = None
    description: str = Field(default="", max_length=1000)


class InvokeBody(RequestModel):
    text: str = Field(max_length=20_000)
    # Run from a thread's reply box: a posted answer is a reply in that thread.
    thread_root_id: Id | None = None


@router.post("/commands", status_code=201)
async def register_command(body: CommandBody, caller: Caller, services: Services) -> dict[str, Any]:
    people_only(caller)
    command, secret = await services.commands.register(
        caller.user_id,
        body.name,
        body.url,
        conversation_id=body.conversation_id,
        description=body.description,
    )
    return {"command": command.to_public() | {"secret": secret}}


@router.get("/commands")
async def list_commands(
    caller: Caller, services: Services, conversation_id: Annotated[Id | None, Query()] = None
) -> dict[str, Any]:
    return {"commands": await services.commands.available(caller.user_id, conversation_id)}


@router.delete("/commands/{command_id}", status_code=204)
async def delete_command(command_id: Id, caller: Caller, services: Services) -> Response:
    await services.commands.delete(caller.user_id, command_id)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/commands", tags=["conversations"])
async def run_command(
    conversation_id: Id, body: InvokeBody, caller: Caller, services: Services
) -> dict[str, Any]:
    """Run ``/name args``; the answer says whether it was posted (``in_channel``, with the
    message) or is for the caller only (``ephemeral``, also pushed as ``command.response``)."""
    people_only(caller)
    result = await services.commands.invoke(
        caller.user_id, conversation_id, body.text, thread_root_id=body.thread_root_id
    )
    return result.to_public()
