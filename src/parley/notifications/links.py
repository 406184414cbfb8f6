"""Absolute links for places outside the app: emails and push payloads.

Built from ``PARLEY_PUBLIC_URL`` (DESIGN §6.0). A notification is made by a job, with no
request to derive a host from, so without that setting the links fall back to the address
Parley listens on — right for a laptop, wrong behind a proxy: production sets it.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from parley.config import Settings


class PublicLinks:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> PublicLinks:
        if settings.public_url:
            return cls(settings.public_url)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        return cls(f"http://{host}:{settings.port}")

    def path(self, path: str) -> str:
        """``path`` (absolute, starting with /) as a link; for the payload's relative form."""
        return self.base_url + path

    def conversation(self, conversation_id: str) -> str:
        return self.path(conversation_path(conversation_id))

    def message(self, conversation_id: str, message_id: str) -> str:
        return self.path(message_path(conversation_id, message_id))

    def settings_page(self) -> str:
        return self.path("/settings/notifications")

    def verify_email(self, token: str) -> str:
        return self.path("/email/verify?" + urlencode({"token": token}))

    def reset_password(self, token: str) -> str:
        """The web client's page that asks for a new password (parley.credentials)."""
        return self.path("/reset-password?" + urlencode({"token": token}))

    def register_with_invite(self, token: str) -> str:
        return self.path("/register?" + urlencode({"invite": token}))

    def unsubscribe(self, token: str) -> str:
        return self.path("/email/unsubscribe?" + urlencode({"token": token}))


def conversation_path(conversation_id: str) -> str:
    return f"/c/{quote(conversation_id, safe='')}"


def message_path(conversation_id: str, message_id: str) -> str:
    return f"{conversation_path(conversation_id)}/m/{quote(message_id, safe='')}"
