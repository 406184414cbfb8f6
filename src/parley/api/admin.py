"""``/api/v1/admin``: site administration (DESIGN §6.3), administrators only.

Users (list and search, role, deactivate / reactivate, reset links, sessions),
conversations (list, archive, delete), the registration mode, registration invites and the audit log.
Every change is audited. The report queue, open to moderators too, is in ``api.moderation``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import Field, StrictBool

from parley.api.deps import Client, RequestModel, Services
from parley.api.roles import Admin
from parley.clock import utcnow
from parley.fields import Id

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Cursor = Annotated[str | None, Query(max_length=26)]
Limit = Annotated[int, Query(ge=1, le=100)]


class UserPatch(RequestModel):
    role: Literal["user", "moderator", "admin"] | None = None
    deactivated: bool | None = None


class SettingsPatch(RequestModel):
    registration: Literal["open", "invite", "closed"] | None = None


class InviteBody(RequestModel):
    max_uses: int | None = Field(default=1, ge=1, le=10_000)  # null: unlimited
    expires_in_hours: int | None = Field(default=168, ge=1, le=24 * 365)  # null: never
    note: str = Field(default="", max_length=200)


@router.get("/users")
async def list_users(
    admin: Admin,
    services: Services,
    q: Annotated[str, Query(max_length=100)] = "",
    role: Literal["user", "moderator", "admin"] | None = None,
    status: Literal["active", "deactivated"] | None = None,
    after: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Every account, deactivated ones too, by id; ``after`` is the last id of a page."""
    found, has_more = await services.administration.list_users(
        q=q, role=role, status=status, after=after, limit=limit
    )
    return {"users": [u.to_public() for u in found], "has_more": has_more}


@router.get("/users/{user_id}")
async def get_user(user_id: Id, admin: Admin, services: Services) -> dict[str, Any]:
    user = await services.administration.get_user(user_id)
    return {"user": user.to_public()}


@router.patch("/users/{user_id}")
async def update_user(
    user_id: Id, body: UserPatch, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    """``role`` and/or ``deactivated``. Deactivating revokes every session (sockets closed
    with 4001); the last active administrator cannot be demoted or deactivated
    (``409 LAST_ADMIN``)."""
    user = await services.administration.update_user(
        admin.user_id,
        user_id,
        role=body.role,
        deactivated=body.deactivated,
        ip_address=client.ip_address,
    )
    return {"user": user.to_public()}


@router.post("/users/{user_id}/password-reset-link")
async def password_reset_link(
    user_id: Id, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    """A single-use reset link to hand to the user (no SMTP needed)."""
    url, expires_at = await services.credentials.issue_link(
        user_id, issued_by=admin.user_id, ip_address=client.ip_address
    )
    return {"url": url, "expires_at": expires_at.isoformat()}


@router.get("/users/{user_id}/sessions")
async def user_sessions(user_id: Id, admin: Admin, services: Services) -> dict[str, Any]:
    await services.administration.get_user(user_id)  # 404 for no such user
    sessions = await services.auth.list_sessions(user_id)
    return {"sessions": [s.to_public("") for s in sessions]}


@router.delete("/users/{user_id}/sessions")
async def revoke_user_sessions(
    user_id: Id, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    """Log the user out everywhere (sockets closed on every node)."""
    await services.administration.get_user(user_id)
    count = await services.administration.revoke_sessions(
        admin.user_id, user_id, ip_address=client.ip_address
    )
    return {"sessions_revoked": count}


@router.get("/conversations")
async def list_conversations(
    admin: Admin,
    services: Services,
    q: Annotated[str, Query(max_length=100)] = "",
    type: Literal["direct", "group"] | None = None,
    after: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Every conversation by id with its member count — never its messages."""
    found, has_more = await services.administration.list_conversations(
        q=q, kind=type, after=after, limit=limit
    )
    return {"conversations": found, "has_more": has_more}


@router.delete("/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(
    conversation_id: Id, admin: Admin, services: Services, client: Client
) -> Response:
    """Delete a conversation with its messages and files; members get ``conversation.deleted``."""
    await services.administration.delete_conversation(
        admin.user_id, conversation_id, ip_address=client.ip_address
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class ConversationPatch(RequestModel):
    archived: StrictBool


@router.patch("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: Id, body: ConversationPatch, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    """Archive (read-only, history kept) or unarchive a conversation; members get
    ``conversation.updated``. Repeating it changes nothing."""
    await services.administration.set_archived(
        admin.user_id, conversation_id, body.archived, ip_address=client.ip_address
    )
    return {"conversation_id": conversation_id, "archived": body.archived}


@router.get("/settings")
async def get_settings(admin: Admin, services: Services) -> dict[str, Any]:
    return {"settings": {"registration": await services.registration.mode()}}


@router.patch("/settings")
async def update_settings(
    body: SettingsPatch, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    if body.registration is not None:
        await services.registration.set_mode(
            body.registration, actor_id=admin.user_id, ip_address=client.ip_address
        )
    return {"settings": {"registration": await services.registration.mode()}}


@router.get("/invites")
async def list_invites(admin: Admin, services: Services) -> dict[str, Any]:
    now = utcnow()
    return {"invites": [i.to_public(now) for i in await services.registration.list_invites()]}


@router.post("/invites", status_code=status.HTTP_201_CREATED)
async def create_invite(
    body: InviteBody, admin: Admin, services: Services, client: Client
) -> dict[str, Any]:
    """A registration link (shown once). Single-use by default, a week by default."""
    invite, token = await services.registration.create_invite(
        admin.user_id,
        max_uses=body.max_uses,
        expires_in_hours=body.expires_in_hours,
        note=body.note,
        ip_address=client.ip_address,
    )
    url = services.notifications.links.register_with_invite(token)
    return {"invite": invite.to_public(utcnow()) | {"token": token, "url": url}}


@router.delete("/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invite(invite_id: Id, admin: Admin, services: Services, client: Client) -> Response:
    await services.registration.revoke_invite(admin.user_id, invite_id, ip_address=client.ip_address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit")
async def audit_log(
    admin: Admin,
    services: Services,
    action: Annotated[str | None, Query(max_length=48)] = None,
    actor_id: Annotated[str | None, Query(max_length=26)] = None,
    target_user_id: Annotated[str | None, Query(max_length=26)] = None,
    before: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Security events, newest first; ``before`` is the last id of a page."""
    entries, has_more = await services.audit.list(
        action=action, actor_id=actor_id, target_user_id=target_user_id, before=before, limit=limit
    )
    return {"entries": [e.to_public() for e in entries], "has_more": has_more}
