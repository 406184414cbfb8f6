"""The pages behind the links in Parley's emails: verify an address, unsubscribe.

- ``GET /email/verify?token=`` verifies and says so. (A GET that changes state, as every
  verification link does: opening it proves the mailbox received it, whoever opens it.)
- ``GET /email/unsubscribe?token=`` shows a one-button form and changes nothing: mail
  scanners fetch links, and must not unsubscribe anyone.
- ``POST /email/unsubscribe?token=`` unsubscribes — the form's button, and RFC 8058's
  one-click POST (``List-Unsubscribe=One-Click``) that mail clients send themselves.

Plain server-rendered HTML (the client app may not be loaded, or logged in, where the mail
is read), styled by ``/static/pages.css`` under the same CSP as everything else.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from parley.api.deps import Services
from parley.errors import ParleyError
from parley.security.link_tokens import LinkPurpose

# A bad or expired link answers a page saying so (a person opened it); bad parameters the
# usual JSON error. Both are documented, so the OpenAPI document says what really comes back.
_PAGE_OR_ERROR = {
    "text/html": {"schema": {"type": "string"}},
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
}
PAGE_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"description": description, "content": _PAGE_OR_ERROR}
    for status, description in (
        (400, "The link is not valid or has expired (INVALID_LINK), or no token"),
        (404, "The link's account no longer exists"),
        (409, "The address was verified by another account (EMAIL_TAKEN)"),
    )
}

router = APIRouter(prefix="/email", tags=["email links"], responses=PAGE_ERRORS)

Token = Annotated[str, Query(max_length=4096)]


def page(title: str, body: str, *, status_code: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>{escape(title)} · Parley</title>"
        "<link rel=\"stylesheet\" href=\"/static/pages.css\"></head>"
        "<body class=\"plain-page\"><main class=\"plain-card\">"
        "<img src=\"/static/icon.svg\" alt=\"\" width=\"40\" height=\"40\">"
        f"<h1>{escape(title)}</h1>{body}"
        "<p><a href=\"/\">Open Parley</a></p></main></body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def failure(error: ParleyError) -> HTMLResponse:
    return page("This link does not work", f"<p>{escape(error.message)}</p>", status_code=error.status)


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(token: Token, services: Services) -> HTMLResponse:
    try:
        _user, address = await services.notifications.email_addresses.verify(token)
    except ParleyError as error:
        return failure(error)
    return page(
        "Email address confirmed",
        f"<p><strong>{escape(address.address)}</strong> is confirmed. Parley will email you "
        "there about messages you miss (you can turn that off in your settings).</p>",
    )


@router.get("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_form(token: Token, services: Services) -> HTMLResponse:
    try:
        services.notifications.signer.verify(LinkPurpose.UNSUBSCRIBE_DIGEST, token)
    except ParleyError as error:
        return failure(error)
    action = escape(f"/email/unsubscribe?token={token}", quote=True)
    return page(
        "Stop email about missed messages?",
        f"<form method=\"post\" action=\"{action}\">"
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        "<button type=\"submit\">Unsubscribe</button></form>",
    )


@router.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(token: Token, services: Services) -> HTMLResponse:
    """RFC 8058 one-click (and the form above): digests off for the link's user."""
    try:
        user_id, _ = services.notifications.signer.verify(LinkPurpose.UNSUBSCRIBE_DIGEST, token)
        await services.accounts.get(user_id)  # NotFound for an account that is gone
        await services.notifications.settings.update_defaults(user_id, email_digest=False)
    except ParleyError as error:
        return failure(error)
    return page(
        "You are unsubscribed",
        "<p>Parley will not email you about missed messages any more. You can turn it back "
        "on in Settings → Notifications.</p>",
    )
