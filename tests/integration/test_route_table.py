"""The route table: every API route is the one its own path reaches, and no dependency
of any route runs in a worker thread.

``app.py`` includes the routers busiest first, and FastAPI serves a request with the first
route whose template matches its path. Where two templates match one path — ``GET
/api/v1/conversations/directory`` also fits ``/api/v1/conversations/{conversation_id}`` —
that order decides, so reordering could silently hand a path to the wrong route. Here each
route of the schema is requested on its own template with every parameter filled in, through
the whole application, and the route that was selected must be that template's.

FastAPI runs a plain ``def`` dependency in a worker thread: a hop there and back on every
request that uses it, for work that awaits nothing (``api/deps.py``). Dependencies are
``async def``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Message, Scope

# Routing reads no database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# Not a literal segment of any route, so a parameter never turns a path into another's.
PARAMETER_VALUE = "Zq7Param"


def schema_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    )


async def selected_route(app: FastAPI, method: str, path: str) -> str | None:
    """The template of the route the application selected for ``method path`` (no body)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"parley.test"), (b"content-length", b"0")],
        "client": ("127.0.0.1", 50000),
        "server": ("parley.test", 80),
        "state": {},
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app(scope, receive, send)
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else None


async def test_every_route_is_reached_by_its_own_path(app: FastAPI) -> None:
    routes = schema_routes(app)
    assert len(routes) > 150  # the whole API, not an empty schema
    wrong = []
    for method, template in routes:
        path = re.sub(r"\{[^}]+\}", PARAMETER_VALUE, template)
        selected = await selected_route(app, method, path)
        if selected != template:
            wrong.append(f"{method} {path} went to {selected}, not {template}")
    assert not wrong, "\n".join(wrong)


async def test_a_path_two_templates_match_goes_to_the_literal_one(app: FastAPI) -> None:
    # The overlap the router order exists for: a literal segment where another router has
    # a parameter. Asserted apart so that this case cannot drop out of the schema unseen.
    assert await selected_route(app, "GET", "/api/v1/conversations/directory") == "/api/v1/conversations/directory"
    assert (
        await selected_route(app, "GET", f"/api/v1/conversations/{PARAMETER_VALUE}")
        == "/api/v1/conversations/{conversation_id}"
    )


def dependency_calls(routes: Sequence[object]) -> Iterator[Callable[..., Any]]:
    """Every dependency callable of these routes: their own, their sub-dependencies', and
    those an ``include_router(..., dependencies=...)`` adds."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield from (sub.call for sub in sub_dependants(route.dependant) if sub.call is not None)
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from (depends.dependency for depends in getattr(context, "dependencies", ()))
            yield from dependency_calls(included.routes)


def sub_dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from sub_dependants(sub)


async def test_no_dependency_runs_in_a_worker_thread(app: FastAPI) -> None:
    calls = set(dependency_calls(app.routes))
    assert len(calls) >= 5  # the caller, the services, the text check, the roles...
    threaded = sorted(
        f"{call.__module__}.{call.__qualname__}" for call in calls if not inspect.iscoroutinefunction(call)
    )
    assert not threaded, f"make these dependencies async def: {threaded}"
