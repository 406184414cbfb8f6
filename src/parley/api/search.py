"""``/api/v1/search``: full-text search over the caller's conversations.

Query syntax and result shape: ``parley.services.search`` and ``search_query``. Every
parameter is validated by the service, which names the offending field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from parley.api.deps import Caller, Services
from parley.services.search import DEFAULT_LIMIT

router = APIRouter(prefix="/api/v1", tags=["search"])

# Generous transport bounds only; the service enforces the real limits (q ≤ 500 characters)
# with messages that say so.
MAX_Q_PARAM = 4000
MAX_ID_PARAM = 64
MAX_CURSOR_PARAM = 1000


@router.get("/search")
async def search_messages(
    caller: Caller,
    services: Services,
    q: Annotated[str, Query(max_length=MAX_Q_PARAM)] = "",
    conversation_id: Annotated[str | None, Query(max_length=MAX_ID_PARAM)] = None,
    sender_id: Annotated[str | None, Query(max_length=MAX_ID_PARAM)] = None,
    after: Annotated[str | None, Query(max_length=MAX_ID_PARAM)] = None,
    before: Annotated[str | None, Query(max_length=MAX_ID_PARAM)] = None,
    has: Annotated[str | None, Query(max_length=MAX_ID_PARAM)] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_PARAM)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Messages matching ``q`` in conversations you are a member of, best first.

    ``q``: words (all must match), ``"exact phrases"``, ``prefix*``; 2–500 characters.
    Words of 3+ characters also match inside longer words; CJK and other text without
    spaces matches as substrings. ``after`` (inclusive) and ``before`` (exclusive) are ISO
    8601 dates or date-times. ``has=attachment`` keeps messages with attachments.

    Each result: ``conversation {id, type, name}``, ``sender {id, username,
    display_name}``, ``message_id``, ``seq``, ``created_at``, ``match`` ("words" or
    "partial"), ``snippet`` with ``highlights`` (``[start, end)`` code-point offsets into
    the snippet; plain text, never markup) and the full ``message``. Pass ``next_cursor``
    back as ``cursor`` for the next page.
    """
    return await services.search.search(
        caller.user_id,
        q,
        conversation_id=conversation_id,
        sender_id=sender_id,
        after=after,
        before=before,
        has=has,
        cursor=cursor,
        limit=limit,
    )
