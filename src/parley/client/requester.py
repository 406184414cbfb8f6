"""What every part of the REST client calls: ``request``, as a Protocol, with the JSON type
and the path-segment quoting they share.

``ParleyClient`` (``parley.client.rest``) is composed of one mixin per concern
(``accounts_api``, ``conversations_api``, ``messages_api``, ...). Each mixin's methods take
``self:`` a Protocol naming exactly what they use of the client — ``Requester``, or one
extending it — so mypy checks that the client supplies it, and no mixin pretends to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

JSON = dict[str, Any]


def segment(value: str) -> str:
    """``value`` as one path segment, quoted (an id holding ``/`` cannot reach another route)."""
    return quote(value, safe="")


class Requester(Protocol):
    """The client's one API call (``ParleyClient.request``)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any: ...
