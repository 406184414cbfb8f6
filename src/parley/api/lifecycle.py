"""Data lifecycle routes (DESIGN §6.4): retention settings and the legal hold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id
from parley.lifecycle.retention import MAX_RETENTION_DAYS

router = APIRouter(prefix="/api/v1", tags=["lifecycle"])


class RetentionBody(RequestModel):
    # None: follow the site policy (PARLEY_RETENTION_DAYS).
    retention_days: int | None = Field(ge=1, le=MAX_RETENTION_DAYS)


class LegalHoldBody(RequestModel):
    legal_hold: bool


@router.put("/conversations/{conversation_id}/retention")
async def set_retention(
    conversation_id: Id, body: RetentionBody, caller: Caller, services: Services
) -> dict[str, Any]:
    """A group's owner or admins set how long its messages are kept."""
    await services.retention.set_conversation_days(
        caller.user_id, conversation_id, body.retention_days
    )
    return {"conversation": await services.conversations.get(caller.user_id, conversation_id)}


@router.put("/conversations/{conversation_id}/legal-hold", status_code=204)
async def set_legal_hold(
    conversation_id: Id, body: LegalHoldBody, caller: Caller, services: Services
) -> Response:
    """Site administrators: suspend (or resume) retention deletes in a conversation."""
    await services.retention.set_legal_hold(caller.user_id, conversation_id, body.legal_hold)
    return Response(status_code=204)
