"""Threads (DESIGN §6.5): ``/api/v1/messages/{id}/thread`` (replies, follow, read) and
``/api/v1/threads`` (the threads the caller follows). Replying is a send with
``thread_root_id`` (``POST /api/v1/conversations/{id}/messages``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import Id, Seq

router = APIRouter(prefix="/api/v1", tags=["threads"])


class ThreadReadBody(RequestModel):
    seq: Seq


@router.get("/messages/{message_id}/thread")
async def thread(
    message_id: Id,
    caller: Caller,
    services: Services,
    before_seq: Annotated[Seq | None, Query()] = None,
    after_seq: Annotated[Seq | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The root, a page of its replies (latest first page by default) and the caller's
    state of the thread (following, read mark, unread count)."""
    return await services.threads.replies(
        caller.user_id, message_id, before_seq=before_seq, after_seq=after_seq, limit=limit
    )


@router.put("/messages/{message_id}/thread/follow")
async def follow(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    return await services.threads.follow(caller.user_id, message_id, True)


@router.delete("/messages/{message_id}/thread/follow")
async def unfollow(message_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    return await services.threads.follow(caller.user_id, message_id, False)


@router.post("/messages/{message_id}/thread/read")
async def mark_read(
    message_id: Id, body: ThreadReadBody, caller: Caller, services: Services
) -> dict[str, Any]:
    return await services.threads.mark_read(caller.user_id, message_id, body.seq)


@router.get("/threads")
async def followed(
    caller: Caller,
    services: Services,
    unread_only: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Followed threads, most recently replied first (the "Threads" view)."""
    return await services.threads.followed(caller.user_id, unread_only=unread_only, limit=limit)
