"""Domain errors: one stable ``code`` each, mapped to an HTTP status and a WebSocket frame.

    ParleyError                      500 INTERNAL_ERROR (never raised for bad input)
    ├── ValidationFailed             400 VALIDATION_ERROR (+ field details)
    │   ├── MalformedBody            400 INVALID_JSON
    │   ├── InvalidLink              400 INVALID_LINK (a signed email link: bad or expired)
    │   ├── InvalidCode              400 INVALID_CODE (a wrong, used or replayed 2FA code)
    │   ├── InvalidInvite            400 INVALID_INVITE (unknown, used up, expired, revoked)
    │   └── InvalidSignature         400 INVALID_SIGNATURE (an E2EE key not signed as stated)
    ├── AuthenticationFailed         401 AUTHENTICATION_FAILED
    │   ├── InvalidCredentials       401 INVALID_CREDENTIALS
    │   ├── InvalidToken             401 INVALID_TOKEN
    │   ├── TokenExpired             401 TOKEN_EXPIRED
    │   ├── SessionRevoked           401 SESSION_REVOKED
    │   ├── InvalidRefreshToken      401 INVALID_REFRESH_TOKEN
    │   ├── RefreshTokenReused       401 REFRESH_TOKEN_REUSED
    │   └── TotpRequired             401 TOTP_REQUIRED (+ mfa_token: POST /auth/login/2fa)
    ├── Forbidden                    403 FORBIDDEN
    │   ├── Blocked                  403 BLOCKED
    │   ├── OriginNotAllowed         403 ORIGIN_NOT_ALLOWED (a WebSocket upgrade from a foreign page)
    │   ├── WrongPassword            403 WRONG_PASSWORD (the current password, when re-asked)
    │   ├── RegistrationClosed       403 REGISTRATION_CLOSED
    │   ├── InviteRequired           403 INVITE_REQUIRED
    │   └── E2eeDisabled             403 E2EE_DISABLED (PARLEY_E2EE=off)
    ├── NotFound                     404 NOT_FOUND
    ├── MethodNotAllowed             405 METHOD_NOT_ALLOWED
    ├── Conflict                     409 CONFLICT
    │   ├── UsernameTaken            409 USERNAME_TAKEN
    │   ├── SlugTaken                409 SLUG_TAKEN
    │   ├── IdempotencyConflict      409 IDEMPOTENCY_CONFLICT
    │   ├── GroupFull                409 GROUP_FULL
    │   ├── MessageDeleted           409 MESSAGE_DELETED
    │   ├── PinLimit                 409 PIN_LIMIT (a conversation's pins are full)
    │   ├── InviteUnusable           409 INVITE_UNUSABLE (expired, revoked or used up)
    │   ├── EmailTaken               409 EMAIL_TAKEN
    │   ├── NotConfigured            409 NOT_CONFIGURED (e.g. email without PARLEY_SMTP_URL)
    │   ├── LastAdmin                409 LAST_ADMIN (the last active administrator stays)
    │   ├── AlreadyReported          409 ALREADY_REPORTED
    │   ├── EncryptionRequired       409 ENCRYPTION_REQUIRED (plaintext, encrypted conversation)
    │   ├── NotEncrypted             409 NOT_ENCRYPTED (ciphertext, plain conversation)
    │   └── DeviceKeysChanged        409 DEVICE_KEYS_CHANGED (a device's identity is fixed)
    ├── PayloadTooLarge              413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaType         415 UNSUPPORTED_MEDIA_TYPE
    ├── RateLimited                  429 RATE_LIMITED (+ retry_after)
    ├── TooManyConnections           429 TOO_MANY_CONNECTIONS (sockets per user; close 4029)
    └── Unavailable                  503 UNAVAILABLE

Error body (DESIGN §3): ``{"error": {"code", "message", "details": [{"field", "message"}],
"request_id"}}``. The gateway sends the same object inside an ``error`` frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


class ParleyError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[FieldProblem] | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or []
        if code is not None:
            self.code = code  # type: ignore[misc]  # a narrower code for one instance
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = [{"field": d.field, "message": d.message} for d in self.details]
        return body


class ValidationFailed(ParleyError):
    status = 400
    code = "VALIDATION_ERROR"
    default_message = "The request is not valid"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", details=[FieldProblem(field, message)])


class MalformedBody(ValidationFailed):
    code = "INVALID_JSON"
    default_message = "The request body is not valid JSON"


class InvalidLink(ValidationFailed):
    code = "INVALID_LINK"
    default_message = "This link is not valid or has expired"


class InvalidCode(ValidationFailed):
    code = "INVALID_CODE"
    default_message = "This code is not valid"


class InvalidInvite(ValidationFailed):
    code = "INVALID_INVITE"
    default_message = "This invite link is not valid, has expired or has been used"


class InvalidSignature(ValidationFailed):
    code = "INVALID_SIGNATURE"
    default_message = "A signature does not verify"


class AuthenticationFailed(ParleyError):
    status = 401
    code = "AUTHENTICATION_FAILED"
    default_message = "Authentication required"


class InvalidCredentials(AuthenticationFailed):
    code = "INVALID_CREDENTIALS"
    default_message = "Wrong username or password"


class InvalidToken(AuthenticationFailed):
    code = "INVALID_TOKEN"
    default_message = "The access token is not valid"


class TokenExpired(AuthenticationFailed):
    code = "TOKEN_EXPIRED"
    default_message = "The access token has expired; refresh it"


class SessionRevoked(AuthenticationFailed):
    code = "SESSION_REVOKED"
    default_message = "This session has been logged out"


class InvalidRefreshToken(AuthenticationFailed):
    code = "INVALID_REFRESH_TOKEN"
    default_message = "The refresh token is not valid"


class RefreshTokenReused(AuthenticationFailed):
    code = "REFRESH_TOKEN_REUSED"
    default_message = "This refresh token was already used; the session has been revoked"


class TotpRequired(AuthenticationFailed):
    code = "TOTP_REQUIRED"
    default_message = "This account has two-factor authentication: send a code"

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        super().__init__()
        self.mfa_token = mfa_token
        self.expires_in = expires_in

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"mfa_token": self.mfa_token, "expires_in": self.expires_in}


class Forbidden(ParleyError):
    status = 403
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this"


class Blocked(Forbidden):
    code = "BLOCKED"
    default_message = "One of you has blocked the other"


class OriginNotAllowed(Forbidden):
    code = "ORIGIN_NOT_ALLOWED"
    default_message = "This page's origin may not open the real-time socket"


class WrongPassword(Forbidden):
    code = "WRONG_PASSWORD"
    default_message = "The current password is wrong"


class RegistrationClosed(Forbidden):
    code = "REGISTRATION_CLOSED"
    default_message = "Registration is closed on this server"


class InviteRequired(Forbidden):
    code = "INVITE_REQUIRED"
    default_message = "Registration on this server needs an invite link"


class ConversationArchived(Forbidden):
    code = "CONVERSATION_ARCHIVED"
    default_message = "This conversation is archived: it is read-only"


class E2eeDisabled(Forbidden):
    code = "E2EE_DISABLED"
    default_message = "End-to-end encryption is switched off on this server"


class NotFound(ParleyError):
    status = 404
    code = "NOT_FOUND"
    default_message = "Not found"


class MethodNotAllowed(ParleyError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed"


class Conflict(ParleyError):
    status = 409
    code = "CONFLICT"
    default_message = "Conflict"


class UsernameTaken(Conflict):
    code = "USERNAME_TAKEN"
    default_message = "This username is taken"


class SlugTaken(Conflict):
    code = "SLUG_TAKEN"
    default_message = "This slug is taken"


class IdempotencyConflict(Conflict):
    code = "IDEMPOTENCY_CONFLICT"
    default_message = "This client_msg_id was already used for a different message"


class GroupFull(Conflict):
    code = "GROUP_FULL"
    default_message = "The group has reached its member limit"


class MessageDeleted(Conflict):
    code = "MESSAGE_DELETED"
    default_message = "The message has been deleted"


class PinLimit(Conflict):
    code = "PIN_LIMIT"
    default_message = "This conversation has as many pinned messages as it may have"


class InviteUnusable(Conflict):
    code = "INVITE_UNUSABLE"
    default_message = "This invite link has expired, was revoked or has been used up"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    default_message = "This email address is already verified by another account"


class NotConfigured(Conflict):
    code = "NOT_CONFIGURED"
    default_message = "This server is not configured for this"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"
    default_message = "This is the last active administrator"


class AlreadyReported(Conflict):
    code = "ALREADY_REPORTED"
    default_message = "You have already reported this message"


class EncryptionRequired(Conflict):
    code = "ENCRYPTION_REQUIRED"
    default_message = "This conversation is end-to-end encrypted: send ciphertext, not content"


class NotEncrypted(Conflict):
    code = "NOT_ENCRYPTED"
    default_message = "This conversation is not end-to-end encrypted: send content"


class DeviceKeysChanged(Conflict):
    code = "DEVICE_KEYS_CHANGED"
    default_message = "A device's identity keys never change: register a new device id"


class PayloadTooLarge(ParleyError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large"


class UnsupportedMediaType(ParleyError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Unsupported media type"


class RateLimited(ParleyError):
    status = 429
    code = "RATE_LIMITED"
    default_message = "Too many requests; slow down"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(retry_after, 0.0)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["retry_after"] = round(self.retry_after, 3)
        return body


class TooManyConnections(ParleyError):
    status = 429
    code = "TOO_MANY_CONNECTIONS"
    default_message = "Too many real-time connections for this user; close some first"


class Unavailable(ParleyError):
    status = 503
    code = "UNAVAILABLE"
    default_message = "The service is unavailable; try again"
