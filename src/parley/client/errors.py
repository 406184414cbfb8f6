"""What the SDK raises. Every error that came from the server keeps the server's stable
``code`` (``docs/protocol.md``, DESIGN §3), so callers branch on codes, not on messages.

    ParleyClientError
    ├── ServerError          an error answer from the server
    │   ├── ApiError         ... to a REST request (has the HTTP status)
    │   └── CallError        ... to a gateway call (an ``error`` frame)
    ├── ConnectionLost       the connection dropped before a call was answered: the call
    │                        may or may not have taken effect (resend idempotently)
    └── SessionClosed        the realtime session is over (closed by the caller, or the
                             server refused its credentials: close code 4001)
"""

from __future__ import annotations

from typing import Any


class ParleyClientError(Exception):
    pass


class ServerError(ParleyClientError):
    def __init__(self, body: dict[str, Any]) -> None:
        self.code = str(body.get("code", "INTERNAL_ERROR"))
        self.message = str(body.get("message", ""))
        self.details: list[dict[str, Any]] = list(body.get("details") or [])
        retry_after = body.get("retry_after")
        self.retry_after = float(retry_after) if isinstance(retry_after, int | float) else None
        # TOTP_REQUIRED: the token for ``ParleyClient.login_second_factor``.
        mfa_token = body.get("mfa_token")
        self.mfa_token = mfa_token if isinstance(mfa_token, str) else None
        super().__init__(f"{self.code}: {self.message}")


class ApiError(ServerError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        super().__init__(body)


class CallError(ServerError):
    def __init__(self, method: str, body: dict[str, Any]) -> None:
        self.method = method
        super().__init__(body)


class ConnectionLost(ParleyClientError):
    pass


class SessionClosed(ParleyClientError):
    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)
