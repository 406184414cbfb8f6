"""What a bot token may call over REST (DESIGN §6.6: "scoped to the conversations they are
added to").

A bot reads and writes messages where it is a member, and reads about itself and the users
it meets; it never manages accounts, sessions, contacts, conversations, other bots,
webhooks or commands. The list is an allow-list of route templates: a route added later
is closed to bots until someone decides otherwise. Membership itself is checked by the
services, as for everyone.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from parley.errors import Forbidden

# (method, route template) pairs a bot may call.
BOT_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/users/{user_id}"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/{conversation_id}"),
        ("GET", "/api/v1/conversations/{conversation_id}/members"),
        ("GET", "/api/v1/conversations/{conversation_id}/messages"),
        ("POST", "/api/v1/conversations/{conversation_id}/messages"),
        ("GET", "/api/v1/conversations/{conversation_id}/changes"),
        ("POST", "/api/v1/conversations/{conversation_id}/read"),
        ("POST", "/api/v1/conversations/{conversation_id}/delivered"),
        ("GET", "/api/v1/conversations/{conversation_id}/attachments"),
        ("GET", "/api/v1/messages/{message_id}"),
        ("PATCH", "/api/v1/messages/{message_id}"),
        ("DELETE", "/api/v1/messages/{message_id}"),
        ("PUT", "/api/v1/messages/{message_id}/reactions/{emoji}"),
        ("DELETE", "/api/v1/messages/{message_id}/reactions/{emoji}"),
        ("GET", "/api/v1/messages/{message_id}/receipts"),
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/attachments/{attachment_id}"),
        ("GET", "/api/v1/attachments/{attachment_id}/{variant}"),
        ("GET", "/api/v1/search"),
    }
)


class BotNotAllowed(Forbidden):
    code = "BOT_NOT_ALLOWED"
    default_message = "Bot tokens cannot call this endpoint"


def check_bot_route(request: HTTPConnection) -> None:
    """Refuse (403 ``BOT_NOT_ALLOWED``) a route outside :data:`BOT_ROUTES`."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    method = request.scope.get("method", "GET")
    if method == "HEAD":
        method = "GET"
    if template is None or (method, template) not in BOT_ROUTES:
        raise BotNotAllowed()
