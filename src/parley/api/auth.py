"""``/api/v1/auth`` and ``/api/v1/sessions``: accounts, tokens and devices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from parley.api.deps import Caller, Client, RequestModel, Services

router = APIRouter(prefix="/api/v1", tags=["auth"])


class RegisterBody(RequestModel):
    username: str
    password: str
    display_name: str | None = None


class LoginBody(RequestModel):
    username: str
    password: str
    device_name: str | None = None


class RefreshBody(RequestModel):
    refresh_token: str


@router.post("/auth/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterBody, services: Services) -> dict[str, Any]:
    user = await services.accounts.register(body.username, body.password, body.display_name)
    return {"user": user.to_private()}


@router.post("/auth/login")
async def login(body: LoginBody, services: Services, client: Client) -> dict[str, Any]:
    if body.device_name:
        client = client.__class__(client.ip_address, client.user_agent, body.device_name[:200])
    tokens, user = await services.auth.login(body.username, body.password, client)
    return tokens.to_public() | {"user": user.to_private()}


@router.post("/auth/refresh")
async def refresh(body: RefreshBody, services: Services, client: Client) -> dict[str, Any]:
    tokens = await services.auth.refresh(body.refresh_token, client)
    return tokens.to_public()


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: Caller, services: Services) -> Response:
    await services.auth.revoke_session(caller.user_id, caller.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(caller: Caller, services: Services) -> Response:
    """Log out every device of the caller, this one included."""
    await services.auth.revoke_all(caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions", tags=["sessions"])
async def list_sessions(caller: Caller, services: Services) -> dict[str, Any]:
    sessions = await services.auth.list_sessions(caller.user_id)
    return {"sessions": [s.to_public(caller.session_id) for s in sessions]}


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"])
async def revoke_session(session_id: str, caller: Caller, services: Services) -> Response:
    await services.auth.revoke_session(caller.user_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
