"""Request dependencies: the services (``ports.ApiServices``), the caller, the client's address.

Every dependency is ``async def`` even where it awaits nothing: FastAPI runs a plain ``def``
dependency in a worker thread, a hop there and back for work that takes microseconds. Two
such hops sat in every API request's path; with the router order (``app.py``) they cost a
send about 0.3 ms (docs/benchmarks.md, round eight)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.requests import HTTPConnection

from parley.api.ports import ApiServices
from parley.errors import AuthenticationFailed, RateLimited, ValidationFailed
from parley.fields import BAD_TEXT_MESSAGE, check_texts, first_bad_text
from parley.integrations.bot_scope import check_bot_route
from parley.services.auth import ClientInfo, Principal


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped, and
    no string in it holds NUL or an unpaired surrogate (``parley.fields``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        return check_texts(value)


async def check_request_text(request: HTTPConnection) -> None:
    """Every path and query parameter of every route is storable text (an app-wide
    dependency: routes need not remember). The field is named in the error."""
    bad = first_bad_text([*request.path_params.items(), *request.query_params.multi_items()])
    if bad is not None:
        raise ValidationFailed.field(bad, BAD_TEXT_MESSAGE)


def api_services(request: Request) -> ApiServices:
    container: ApiServices = request.app.state.parley
    return container


async def services_dependency(request: Request) -> ApiServices:
    return api_services(request)


Services = Annotated[ApiServices, Depends(services_dependency)]


async def client_info(request: Request) -> ClientInfo:
    container = api_services(request)
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


async def authenticate_request(container: ApiServices, request: Request) -> Principal:
    """``Authorization: Bearer <access token>`` for people, ``Bot <token>`` for bots (whose
    calls are kept to ``integrations.bot_scope``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bot" and token.strip():
        principal = await container.auth.authenticate_bot(token.strip())
        check_bot_route(request)
        return principal
    return await container.auth.authenticate(bearer_token(request))


async def current_principal(request: Request) -> Principal:
    container = api_services(request)
    principal = await authenticate_request(container, request)
    request.state.user_id = principal.user_id
    decision = await container.limiter.hit(f"api:user:{principal.user_id}", container.api_rate)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
