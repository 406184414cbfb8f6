"""Request body size limit (pure ASGI): 413 before the body is read into memory.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted
as it streams and cut off when it passes the limit. Routes with their own larger limit
(uploads) are listed in ``overrides`` by path prefix.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.errors import PayloadTooLarge


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-stream; FastAPI lets HTTPExceptions pass body parsing,
    and the error handlers turn it into the standard 413 body."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than {limit} bytes")


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _reject(scope, send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    error = PayloadTooLarge(f"The request body is larger than {limit} bytes")
    body = error.to_dict()
    body["request_id"] = scope.get("state", {}).get("request_id", "")
    payload = json.dumps({"error": body}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
