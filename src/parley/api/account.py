"""Account self-service (DESIGN §6.3): password change and reset, two-factor auth.

``/api/v1/users/me/password`` and ``/api/v1/users/me/2fa*`` need the caller's access token;
``/api/v1/auth/password-reset*`` are public (a reset link is how someone who cannot log in
gets back in).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import Field

from parley.api.deps import Caller, Client, RequestModel, Services

router = APIRouter(prefix="/api/v1", tags=["account"])


class PasswordChange(RequestModel):
    current_password: str = Field(max_length=1024)
    new_password: str


class ResetRequest(RequestModel):
    username_or_email: str = Field(max_length=254)


class ResetConfirm(RequestModel):
    token: str = Field(max_length=128)
    new_password: str


class CodeBody(RequestModel):
    code: str = Field(max_length=16)


class SecondFactorProof(RequestModel):
    code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=32)


@router.post("/users/me/password")
async def change_password(
    body: PasswordChange, caller: Caller, services: Services, client: Client
) -> dict[str, Any]:
    """Needs the current password; every other session is logged out (their sockets close
    at once). ``403 WRONG_PASSWORD`` for a wrong current password."""
    revoked = await services.credentials.change_password(
        caller.user_id, caller.session_id, body.current_password, body.new_password, client
    )
    return {"sessions_revoked": revoked}


@router.post("/auth/password-reset", status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(body: ResetRequest, services: Services, client: Client) -> dict[str, Any]:
    """Mails a single-use link (valid ``PARLEY_PASSWORD_RESET_TTL_MINUTES``) to the
    account's verified address. 202 in every case: the answer does not say whether the
    account exists or has an address."""
    await services.credentials.request_reset(body.username_or_email, client)
    return {"accepted": True}


@router.post("/auth/password-reset/confirm")
async def confirm_password_reset(body: ResetConfirm, services: Services, client: Client) -> dict[str, Any]:
    """Sets the new password; every session of the account is logged out.
    ``400 INVALID_LINK`` for an unknown, used or expired token."""
    await services.credentials.confirm_reset(body.token, body.new_password, client)
    return {"reset": True}


@router.get("/users/me/2fa")
async def two_factor_status(caller: Caller, services: Services) -> dict[str, Any]:
    return {"two_factor": await services.two_factor.status(caller.user_id)}


@router.post("/users/me/2fa")
async def enrol_two_factor(caller: Caller, services: Services) -> dict[str, Any]:
    """A new TOTP secret, its ``otpauth://`` URI and a QR code (an SVG ``data:`` URI);
    2FA is on only once ``/users/me/2fa/confirm`` gets a code made from it."""
    enrolment = await services.two_factor.enrol(caller.user_id)
    return {"two_factor": enrolment.to_public()}


@router.post("/users/me/2fa/confirm")
async def confirm_two_factor(
    body: CodeBody, caller: Caller, services: Services, client: Client
) -> dict[str, Any]:
    """Turns 2FA on; the ten recovery codes are in this answer and never again."""
    codes = await services.two_factor.confirm(caller.user_id, body.code, ip_address=client.ip_address)
    return {"recovery_codes": codes}


@router.delete("/users/me/2fa")
async def disable_two_factor(
    body: SecondFactorProof, caller: Caller, services: Services, client: Client
) -> dict[str, Any]:
    await services.two_factor.disable(
        caller.user_id, code=body.code, recovery_code=body.recovery_code, ip_address=client.ip_address
    )
    return {"two_factor": await services.two_factor.status(caller.user_id)}


@router.post("/users/me/2fa/recovery-codes")
async def renew_recovery_codes(
    body: CodeBody, caller: Caller, services: Services, client: Client
) -> dict[str, Any]:
    """Ten new recovery codes for a current code; the old ones stop working."""
    codes = await services.two_factor.renew_recovery_codes(
        caller.user_id, body.code, ip_address=client.ip_address
    )
    return {"recovery_codes": codes}
