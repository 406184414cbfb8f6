"""Request dependencies: the service container, the caller, the client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from parley.container import Container
from parley.errors import AuthenticationFailed, RateLimited
from parley.services.auth import ClientInfo, Principal


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.parley
    return container


Services = Annotated[Container, Depends(get_container)]


def client_info(request: Request) -> ClientInfo:
    container = get_container(request)
    address = request.client.host if request.client else ""
    if container.settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            address = forwarded.split(",")[0].strip()
    return ClientInfo(
        ip_address=address,
        user_agent=request.headers.get("user-agent", "")[:400],
        device_name=request.headers.get("x-parley-device", "")[:200],
    )


Client = Annotated[ClientInfo, Depends(client_info)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Send 'Authorization: Bearer <access token>'")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    container = get_container(request)
    principal = await container.auth.authenticate(bearer_token(request))
    request.state.user_id = principal.user_id
    decision = await container.limiter.hit(f"api:user:{principal.user_id}", container.api_rate)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
