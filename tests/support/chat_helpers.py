"""HTTP helpers for chat tests: conversations and messages through the public API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import UserHandle


async def open_direct(client: httpx.AsyncClient, me: UserHandle, other: UserHandle) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": other.id}, headers=me.headers
    )
    assert response.status_code in (200, 201), response.text
    conversation: dict[str, Any] = response.json()["conversation"]
    return conversation


async def open_group(
    client: httpx.AsyncClient, owner: UserHandle, members: list[UserHandle], name: str = "Team", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/conversations",
        json={"type": "group", "name": name, "member_ids": [m.id for m in members], **extra},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()["conversation"]
    return conversation


async def post_message(
    client: httpx.AsyncClient, user: UserHandle, conversation_id: str, **body: Any
) -> httpx.Response:
    """The response to posting ``body``, whatever it is: for tests of refusals."""
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=user.headers
    )


async def send(
    client: httpx.AsyncClient, user: UserHandle, conversation_id: str, content: str, **extra: Any
) -> dict[str, Any]:
    response = await post_message(client, user, conversation_id, content=content, **extra)
    assert response.status_code in (200, 201), response.text
    message: dict[str, Any] = response.json()["message"]
    return message


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])
