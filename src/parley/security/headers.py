"""Security headers on every HTTP response (pure ASGI middleware).

The CSP allows scripts and styles from Parley's own origin only — no inline scripts — and
images from ``blob:``/``data:`` for previews; ``frame-ancestors 'none'`` stops clickjacking.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# /docs (Swagger UI) loads its bundle inline; it gets a relaxed policy of its own.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    # The microphone is for voice messages, from Parley's own pages only.
    (b"permissions-policy", b"camera=(), microphone=(self), geolocation=()"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, docs_path: str = "/docs", hsts_max_age: int = 0) -> None:
        self.app = app
        self.docs_path = docs_path
        self.static_headers = list(SECURITY_HEADERS)
        if hsts_max_age > 0:
            self.static_headers.append(
                (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (
            DOCS_CONTENT_SECURITY_POLICY
            if scope["path"].startswith(self.docs_path)
            else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [h for h in self.static_headers if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
