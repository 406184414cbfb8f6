"""A login through the API: the password, then — when the account has 2FA — a code.

``Auth`` owns sessions and the password check; this adds the second step and the audit
entries (DESIGN §6.3). With 2FA on, the password step answers ``TotpRequired`` carrying an
``mfa_token``: a signed token naming the user, valid ``MFA_TOKEN_TTL``, that
``POST /api/v1/auth/login/2fa`` exchanges, with a code or a recovery code, for the session
the password alone would have opened. Code guesses are throttled per user
(``services.two_factor``); the token itself proves only that the password was right.
"""

from __future__ import annotations

from datetime import timedelta

from parley.errors import (
    InvalidCode,
    InvalidCredentials,
    InvalidLink,
    InvalidToken,
    TotpRequired,
)
from parley.security.link_tokens import LinkPurpose, LinkSigner
from parley.services.accounts import User
from parley.services.audit import Action, AuditLog
from parley.services.auth import Auth, ClientInfo, PasswordChecked, TokenPair
from parley.services.two_factor import TwoFactor

# Long enough to open the authenticator app and type a code, short enough to be useless
# when it leaks.
MFA_TOKEN_TTL = timedelta(minutes=5)


class LoginFlow:
    def __init__(self, auth: Auth, two_factor: TwoFactor, audit: AuditLog, signer: LinkSigner) -> None:
        self._auth = auth
        self._two_factor = two_factor
        self._audit = audit
        self._signer = signer

    async def login(
        self, username: str, password: str, client: ClientInfo, *, device_token: str | None
    ) -> tuple[TokenPair, User]:
        """The session, or ``TotpRequired`` (with an ``mfa_token``) when 2FA is on."""
        try:
            checked = await self._auth.check_password(
                username, password, client, device_token=device_token
            )
        except InvalidCredentials:
            await self._audit.record(
                Action.LOGIN_FAILED,
                ip_address=client.ip_address,
                details={"username": username.strip().lower()[:64]},
            )
            raise
        if await self._two_factor.is_enabled(checked.user_id):
            token = self._signer.issue(
                LinkPurpose.MFA_LOGIN,
                checked.user_id,
                bound_to=checked.username_key,
                ttl=MFA_TOKEN_TTL,
            )
            raise TotpRequired(token, int(MFA_TOKEN_TTL.total_seconds()))
        return await self._open(checked, client, "password")

    async def second_step(
        self,
        mfa_token: str,
        client: ClientInfo,
        *,
        code: str | None,
        recovery_code: str | None,
    ) -> tuple[TokenPair, User]:
        try:
            user_id, username_key = self._signer.verify(LinkPurpose.MFA_LOGIN, mfa_token)
        except InvalidLink:
            raise InvalidToken("The sign-in has expired or is not valid; log in again") from None
        try:
            method = await self._two_factor.verify(
                user_id, code=code, recovery_code=recovery_code, ip_address=client.ip_address
            )
        except InvalidCode:
            await self._audit.record(
                Action.LOGIN_2FA_FAILED, target_user_id=user_id, ip_address=client.ip_address
            )
            raise
        return await self._open(PasswordChecked(user_id, username_key), client, method)

    async def _open(
        self, checked: PasswordChecked, client: ClientInfo, method: str
    ) -> tuple[TokenPair, User]:
        tokens, user = await self._auth.finish_login(checked, client)
        await self._audit.record(
            Action.LOGIN,
            actor_id=user.id,
            target_user_id=user.id,
            target_id=tokens.session_id,
            ip_address=client.ip_address,
            details={"method": method, "device_name": client.device_name[:100]},
        )
        return tokens, user
