"""The client's credentials: an access token with its expiry and refresh token, or a bot's
long-lived token (DESIGN §2 "REST API": access tokens live minutes, refresh tokens rotate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parley.client.requester import JSON

# Refresh this long before the access token expires, so a request never races the expiry.
REFRESH_MARGIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None = None
    # Wall-clock expiry of the access token (seconds since the epoch); 0 when unknown.
    expires_at: float = 0.0
    # "Bearer" for a person's access token, "Bot" for a bot's long-lived token.
    scheme: str = "Bearer"

    @classmethod
    def bot(cls, token: str) -> Tokens:
        """A bot's token (``POST /api/v1/bots``): never expires, never refreshed."""
        return cls(access_token=token, scheme="Bot")

    @classmethod
    def from_response(cls, body: JSON) -> Tokens:
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=time.time() + float(body.get("expires_in", 0)),
        )

    def expiring(self, margin: float = REFRESH_MARGIN_SECONDS) -> bool:
        return bool(self.expires_at) and time.time() + margin >= self.expires_at

