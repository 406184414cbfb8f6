"""``/api/v1/conversations``: create, list, read, change; members; read marks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id, Seq

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])

MAX_IDS = 1000


class DirectBody(RequestModel):
    type: Literal["direct"]
    user_id: Id
    # End-to-end encrypted (DESIGN §6.1); unset follows PARLEY_E2EE.
    encrypted: bool | None = None


class GroupBody(RequestModel):
    type: Literal["group"]
    name: str = Field(max_length=1000)
    member_ids: list[Id] = Field(default=[], max_length=5000)
    slug: str | None = Field(default=None, max_length=200)
    topic: str = Field(default="", max_length=5000)
    # "public": listed in the directory, anyone may join (DESIGN §6.3).
    visibility: Literal["private", "public"] = "private"
    encrypted: bool | None = None


class ConversationPatch(RequestModel):
    name: str | None = Field(default=None, max_length=1000)
    topic: str | None = Field(default=None, max_length=5000)
    slug: str | None = Field(default=None, max_length=200)
    visibility: Literal["private", "public"] | None = None
    # true switches end-to-end encryption on (admins; either side of a DM); never off.
    encrypted: bool | None = None


class MembersBody(RequestModel):
    user_ids: list[Id] = Field(min_length=1, max_length=MAX_IDS)


class RoleBody(RequestModel):
    role: Literal["member", "admin", "owner"]


class SeqBody(RequestModel):
    seq: Seq


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: Annotated[DirectBody | GroupBody, Field(discriminator="type")],
    caller: Caller,
    services: Services,
) -> JSONResponse:
    """Direct: returns the existing conversation of the pair (200) or creates it (201)."""
    if isinstance(body, DirectBody):
        conversation, created = await services.conversations.create_direct(
            caller.user_id, body.user_id, encrypted=body.encrypted
        )
        return JSONResponse(
            {"conversation": conversation.to_public()}, status_code=201 if created else 200
        )
    conversation = await services.conversations.create_group(
        caller.user_id,
        body.name,
        body.member_ids,
        slug=body.slug,
        topic=body.topic,
        visibility=body.visibility,
        encrypted=body.encrypted,
    )
    return JSONResponse({"conversation": conversation.to_public()}, status_code=201)


@router.get("")
async def list_conversations(caller: Caller, services: Services) -> dict[str, Any]:
    found = await services.conversations.list_for(caller.user_id)
    return {"conversations": [view.to_public() for view in found]}


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    view = await services.conversations.get(caller.user_id, conversation_id)
    return {"conversation": view.to_public()}


@router.patch("/{conversation_id}")
async def patch_conversation(
    conversation_id: Id, body: ConversationPatch, caller: Caller, services: Services
) -> dict[str, Any]:
    if body.encrypted is False:
        await services.conversations.refuse_switch_off(caller.user_id, conversation_id)
    conversation = await services.conversations.update(
        caller.user_id,
        conversation_id,
        name=body.name,
        topic=body.topic,
        slug=body.slug,
        visibility=body.visibility,
    )
    if body.encrypted:
        conversation = await services.conversations.switch_on_encryption(
            caller.user_id, conversation_id
        )
    return {"conversation": conversation.to_public()}


@router.delete("/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: Id, caller: Caller, services: Services) -> Response:
    await services.conversations.delete(caller.user_id, conversation_id)
    return Response(status_code=204)


@router.get("/{conversation_id}/members")
async def list_members(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    found = await services.conversations.members(caller.user_id, conversation_id)
    return {"members": [member.to_public() for member in found]}


@router.post("/{conversation_id}/members")
async def add_members(
    conversation_id: Id, body: MembersBody, caller: Caller, services: Services
) -> dict[str, Any]:
    return await services.conversations.add_members(caller.user_id, conversation_id, body.user_ids)


@router.delete("/{conversation_id}/members/{user_id}", status_code=204)
async def remove_member(
    conversation_id: Id, user_id: Id, caller: Caller, services: Services
) -> Response:
    """Remove a member (admins) or leave (your own id)."""
    await services.conversations.remove_member(caller.user_id, conversation_id, user_id)
    return Response(status_code=204)


@router.patch("/{conversation_id}/members/{user_id}", status_code=204)
async def change_role(
    conversation_id: Id, user_id: Id, body: RoleBody, caller: Caller, services: Services
) -> Response:
    await services.conversations.set_role(caller.user_id, conversation_id, user_id, body.role)
    return Response(status_code=204)


@router.get("/{conversation_id}/pins")
async def pins(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """Pinned messages, the latest pin first (DESIGN §6.5)."""
    return {"pins": await services.pins.list(caller.user_id, conversation_id)}


@router.post("/{conversation_id}/read")
async def mark_read(
    conversation_id: Id, body: SeqBody, caller: Caller, services: Services
) -> dict[str, Any]:
    marked = await services.receipts.mark_read(caller.user_id, conversation_id, body.seq)
    return marked.to_public()


@router.post("/{conversation_id}/delivered")
async def mark_delivered(
    conversation_id: Id, body: SeqBody, caller: Caller, services: Services
) -> dict[str, Any]:
    marked = await services.receipts.mark_delivered(caller.user_id, conversation_id, body.seq)
    return marked.to_public()


# --- messages in a conversation


class SendBody(RequestModel):
    content: str = Field(default="", max_length=50_000)
    client_msg_id: str | None = Field(default=None, max_length=200)
    reply_to_id: Id | None = None
    # Uploads (POST /api/v1/uploads) to attach; content may be empty when there are some.
    # The configured per-message limit (10) is checked by the service; this caps parsing.
    attachment_ids: list[Id] = Field(default=[], max_length=100)
    # A reply in the thread of this message (DESIGN §6.5); ``thread_broadcast``: also
    # show it in the conversation.
    thread_root_id: Id | None = None
    thread_broadcast: bool = False
    # An encrypted message (DESIGN §6.1): ciphertext and its envelope instead of content.
    ciphertext: str | None = Field(default=None, max_length=1_000_000)
    e2ee: dict[str, Any] | None = None


@router.post("/{conversation_id}/messages", status_code=201, tags=["messages"])
async def send_message(
    conversation_id: Id, body: SendBody, caller: Caller, services: Services
) -> JSONResponse:
    """201 with the new message; 200 with the earlier one when ``client_msg_id`` repeats."""
    result = await services.messages.send(
        caller.user_id,
        conversation_id,
        body.content,
        client_msg_id=body.client_msg_id,
        reply_to_id=body.reply_to_id,
        attachment_ids=body.attachment_ids,
        thread_root_id=body.thread_root_id,
        thread_broadcast=body.thread_broadcast,
        ciphertext=body.ciphertext,
        e2ee=body.e2ee,
    )
    return JSONResponse(
        {"message": result.message.to_public()}, status_code=201 if result.created else 200
    )


@router.get("/{conversation_id}/messages", tags=["messages"])
async def history(
    conversation_id: Id,
    caller: Caller,
    services: Services,
    before_seq: Annotated[Seq | None, Query()] = None,
    after_seq: Annotated[Seq | None, Query()] = None,
    around_id: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    page = await services.messages.history(
        caller.user_id,
        conversation_id,
        before_seq=before_seq,
        after_seq=after_seq,
        around_id=around_id,
        limit=limit,
    )
    return page.to_public()


@router.get("/{conversation_id}/changes", tags=["messages"])
async def changes(
    conversation_id: Id,
    caller: Caller,
    services: Services,
    after_seq: Annotated[Seq, Query()],
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> dict[str, Any]:
    page = await services.messages.changes(
        caller.user_id, conversation_id, after_seq=after_seq, limit=limit
    )
    return page.to_public()
