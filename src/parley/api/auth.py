"""``/api/v1/auth`` and ``/api/v1/sessions``: accounts, tokens and devices.

Two ways to hold the refresh token. JSON mode (the SDK, the CLI): it is in the response
body and sent back in the body. Cookie mode (the web client, ``"cookie": true`` on login or
refresh): it travels only in an ``HttpOnly; SameSite=Strict`` cookie scoped to
``/api/v1/auth``, so page scripts never see it; refresh reads the cookie when the body has
no ``refresh_token``, and logout clears it. A page cannot tell whether that cookie exists,
so at load it asks with ``"optional": true``: no cookie at all is then 204 (nobody is logged
in here) instead of a 401 the browser would log as a failed request.

A successful login also hands out a device token (``device_token`` in JSON mode, the
``parley_device`` cookie in cookie mode). Sent back at a later login (body or cookie), it
marks the device as known to the failed-login throttle: strangers' failures on the username
or a shared address never stop it (docs/security.md "Login throttling").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import Field

from parley.api.deps import Caller, Client, RequestModel, Services
from parley.api.errors import error_response
from parley.errors import AuthenticationFailed, InvalidRefreshToken, RateLimited
from parley.fields import Id
from parley.security.login_throttle import address_key

router = APIRouter(prefix="/api/v1", tags=["auth"])

REFRESH_COOKIE = "parley_refresh"
DEVICE_COOKIE = "parley_device"
REFRESH_COOKIE_PATH = "/api/v1/auth"


class RegisterBody(RequestModel):
    username: str
    password: str
    display_name: str | None = None
    invite: str | None = Field(default=None, max_length=128)  # a registration invite's token


class LoginBody(RequestModel):
    username: str
    password: str
    device_name: str | None = None
    cookie: bool = False  # keep the refresh token in an HttpOnly cookie, not the body
    device_token: str | None = Field(default=None, max_length=1024)  # from an earlier login


class SecondFactorBody(RequestModel):
    mfa_token: str = Field(max_length=2048)
    code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=32)
    device_name: str | None = None
    cookie: bool = False


class RefreshBody(RequestModel):
    refresh_token: str | None = None  # absent: read the cookie
    cookie: bool = False
    optional: bool = False  # no token and no cookie: 204, not 401 (a logged-out page load)


def _is_https(request: Request, services: Services) -> bool:
    if services.settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-proto", "")
        if forwarded:
            return forwarded.split(",")[0].strip().lower() == "https"
    return request.url.scheme == "https"


def _cookie_response(
    request: Request,
    services: Services,
    body: dict[str, Any],
    refresh_token: str,
    device_token: str | None = None,
) -> JSONResponse:
    """The body without the refresh (and device) token, which go into cookies instead."""
    public = {
        key: value for key, value in body.items() if key not in {"refresh_token", "device_token"}
    }
    response = JSONResponse(public)
    cookies = [(REFRESH_COOKIE, refresh_token, services.settings.refresh_token_ttl_days)]
    if device_token is not None:
        cookies.append((DEVICE_COOKIE, device_token, services.settings.login_device_token_days))
    for name, value, days in cookies:
        response.set_cookie(
            name,
            value,
            max_age=days * 86400,
            path=REFRESH_COOKIE_PATH,
            secure=_is_https(request, services),
            httponly=True,
            samesite="strict",
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def _clear_cookie(request: Request, services: Services, response: Response) -> None:
    if REFRESH_COOKIE in request.cookies:
        response.delete_cookie(
            REFRESH_COOKIE,
            path=REFRESH_COOKIE_PATH,
            secure=_is_https(request, services),
            httponly=True,
            samesite="strict",
        )


@router.post("/auth/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterBody, services: Services, client: Client) -> dict[str, Any]:
    """At most ``PARLEY_REGISTRATIONS_PER_ADDRESS`` accounts per address and window."""
    key = f"register:address:{address_key(client.ip_address)}"
    decision = await services.limiter.hit(key, services.registration_rate)
    if not decision.allowed:
        raise RateLimited(decision.retry_after, "Too many accounts registered from this address")
    user = await services.registration.register(
        body.username,
        body.password,
        body.display_name,
        invite=body.invite,
        ip_address=client.ip_address,
    )
    return {"user": user.to_private()}


@router.get("/auth/registration")
async def registration_mode(services: Services) -> dict[str, Any]:
    """Whether this server takes registrations: ``open``, ``invite`` (an invite link is
    needed) or ``closed``. Public: the login page asks before offering a form."""
    return {"registration": await services.registration.mode()}


@router.post("/auth/login", response_model=None)
async def login(
    body: LoginBody, request: Request, services: Services, client: Client
) -> dict[str, Any] | JSONResponse:
    """``"cookie": true``: the refresh token goes into an HttpOnly cookie, not the body.
    An account with two-factor authentication answers 401 ``TOTP_REQUIRED`` with an
    ``mfa_token`` for ``POST /api/v1/auth/login/2fa``."""
    if body.device_name:
        client = client.__class__(client.ip_address, client.user_agent, body.device_name[:200])
    device_token = body.device_token or request.cookies.get(DEVICE_COOKIE)
    tokens, user = await services.login.login(
        body.username, body.password, client, device_token=device_token
    )
    result = tokens.to_public() | {"user": user.to_private()}
    if body.cookie:
        return _cookie_response(
            request, services, result, tokens.refresh_token, tokens.device_token
        )
    return result


@router.post("/auth/login/2fa", response_model=None)
async def login_second_factor(
    body: SecondFactorBody, request: Request, services: Services, client: Client
) -> dict[str, Any] | JSONResponse:
    """The second step of a login with 2FA: the ``mfa_token`` from the 401
    ``TOTP_REQUIRED`` and a ``code`` from the authenticator app (or a ``recovery_code``).
    Answers as ``/auth/login`` does, cookie mode included."""
    if body.device_name:
        client = client.__class__(client.ip_address, client.user_agent, body.device_name[:200])
    tokens, user = await services.login.second_step(
        body.mfa_token, client, code=body.code, recovery_code=body.recovery_code
    )
    result = tokens.to_public() | {"user": user.to_private()}
    if body.cookie:
        return _cookie_response(
            request, services, result, tokens.refresh_token, tokens.device_token
        )
    return result


@router.post("/auth/refresh", response_model=None, responses={204: {"description": "optional and no session cookie"}})
async def refresh(
    body: RefreshBody, request: Request, services: Services, client: Client
) -> dict[str, Any] | Response:
    """Rotate the refresh token from the body or, when the body has none, the cookie.
    ``"optional": true`` and neither: 204 (no session here; not an error)."""
    from_cookie = body.refresh_token is None
    token = request.cookies.get(REFRESH_COOKIE) if from_cookie else body.refresh_token
    if token is None:
        if body.optional:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        raise InvalidRefreshToken("No refresh token: send refresh_token or the session cookie")
    try:
        tokens = await services.auth.refresh(token, client)
    except AuthenticationFailed as exc:
        if not from_cookie:
            raise
        failed = error_response(request, exc)  # a dead cookie is dropped, not kept forever
        _clear_cookie(request, services, failed)
        return failed
    if from_cookie or body.cookie:
        return _cookie_response(request, services, tokens.to_public(), tokens.refresh_token)
    return tokens.to_public()


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: Caller, request: Request, services: Services) -> Response:
    await services.auth.revoke_session(caller.user_id, caller.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookie(request, services, response)
    return response


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(caller: Caller, request: Request, services: Services) -> Response:
    """Log out every device of the caller, this one included."""
    await services.auth.revoke_all(caller.user_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookie(request, services, response)
    return response


@router.get("/sessions", tags=["sessions"])
async def list_sessions(caller: Caller, services: Services) -> dict[str, Any]:
    sessions = await services.auth.list_sessions(caller.user_id)
    return {"sessions": [s.to_public(caller.session_id) for s in sessions]}


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"])
async def revoke_session(session_id: Id, caller: Caller, services: Services) -> Response:
    await services.auth.revoke_session(caller.user_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
