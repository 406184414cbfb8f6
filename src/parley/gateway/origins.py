"""Which pages may open the real-time socket: the ``Origin`` check of a WebSocket upgrade.

Browsers do not apply CORS to WebSockets: any page the user visits may open
``wss://chat.example.com/ws`` and, if the client keeps its token where that page can reach
it, speak for the user. A browser always sends the page's ``Origin`` with the upgrade, and a
page cannot forge it, so the server refuses origins it does not know (403
``ORIGIN_NOT_ALLOWED`` before the upgrade).

Allowed (``PARLEY_ALLOWED_ORIGINS``, docs/security.md):
- every origin listed (``*`` allows any: an explicit opt-out);
- with no list, the origin of ``PARLEY_PUBLIC_URL`` when it is set, else the request's own
  host — the web client served by this deployment — and the CORS origins, which are already
  trusted to call the API from another site.

A request without ``Origin`` is not from a browser page (the SDK, the CLI, bots): nothing
to protect against, so it passes; a browser cannot omit the header.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# What a host in an origin is made of (names in punycode, IPv4, IPv6 without brackets):
# anything else (NUL, spaces, non-ASCII) is not an origin a browser sends.
HOST_CHARS = re.compile(r"[a-z0-9._:-]+")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the default port dropped, or None when
    ``value`` is not an origin (``null`` from sandboxed frames, garbage)."""
    try:
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:  # a port out of range, a malformed IPv6 literal
        return None
    if scheme not in DEFAULT_PORTS or not HOST_CHARS.fullmatch(host):
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def host_of(origin: str) -> str:
    """``host[:port]`` of a normalized origin (scheme dropped)."""
    return origin.partition("://")[2]


class OriginPolicy:
    def __init__(
        self,
        allowed: list[str],
        *,
        public_url: str | None = None,
        cors_origins: list[str] | None = None,
    ) -> None:
        self.any = "*" in allowed
        configured = allowed or ([public_url] if public_url else [])
        configured = [*configured, *(cors_origins or [])]
        self._origins = {o for o in (normalize_origin(v) for v in configured) if o is not None}
        # Neither a list nor a public URL: the request's own host is the deployment's.
        self._same_host = not allowed and not public_url

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.any:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:
            return False
        if normalized in self._origins:
            return True
        if self._same_host and host:
            # Compare host and port only: behind a TLS proxy the upgrade arrives as plain
            # HTTP while the page's origin is https.
            request_host = normalize_origin(f"http://{host}")
            return request_host is not None and (
                host_of(request_host) == host_of(normalized)
                or host_of(normalize_origin(f"https://{host}") or "") == host_of(normalized)
            )
        return False
