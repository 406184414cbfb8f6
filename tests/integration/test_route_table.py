"""The route table: every API route is the one its own path reaches, and no dependency
of any route runs in a worker thread.

``app.py`` includes the routers busiest first, and FastAPI serves a request with the first
route whose template matches its path. Where two templates match one path — ``GET
/api/v1/conversations/directory`` also fits ``/api/v1/conversations/{conversation_id}`` —
that order decides, so reordering could silently hand a path to the wrong route. Here each
route (API, operations and web pages alike) is requested on its own template with every
parameter filled in, through the whole application, and the route selected must be that
template's. Then every path two templates of one method both match is requested, and must
reach the one a reader expects: going left to right, the first segment where one template
has a literal and the other a parameter decides for the literal (``by-slug/{slug}`` over
``{conversation_id}/invites``).

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
one_backend = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# Not a literal segment of any route, so a parameter never turns a path into another's.
PARAMETER_VALUE = "Zq7Param"


def route_table(routes: Sequence[object]) -> Iterator[tuple[str, str]]:
    """(method, template) of every route Parley declares, in included routers too."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from route_table(included.routes)
            continue
        if isinstance(route, APIRoute):  # not FastAPI's own /docs, /redoc, /openapi.json
            yield from ((method, route.path) for method in sorted(route.methods) if method != "HEAD")


def concrete(template: str, value: str = PARAMETER_VALUE) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def shared_path(first: str, second: str) -> tuple[str, str] | None:
    """The path both templates match and the template expected to serve it, or None when no
    path matches both. (A ``{x:path}`` parameter spans segments: such a template is
    compared only as itself.)"""
    a, b = first.split("/"), second.split("/")
    if len(a) != len(b) or ":path}" in first + second:
        return None
    path, winner = [], None
    for x, y in zip(a, b, strict=True):
        if not is_parameter(x) and not is_parameter(y):
            if x != y:
                return None
            path.append(x)
        elif is_parameter(x) and is_parameter(y):
            path.append(PARAMETER_VALUE)
        else:
            literal = y if is_parameter(x) else x
            path.append(literal)
            winner = winner or (first if literal == x else second)
    return ("/".join(path), winner) if winner is not None else None


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


@one_backend
async def test_every_route_is_reached_by_its_own_path(app: FastAPI) -> None:
    routes = sorted(set(route_table(app.routes)))
    assert len(routes) > 150  # the whole API and the web pages, not an empty table
    assert ("GET", "/static/{path:path}") in routes and ("GET", "/metrics") in routes
    wrong = []
    for method, template in routes:
        selected = await selected_route(app, method, concrete(template))
        if selected != template:
            wrong.append(f"{method} {concrete(template)} went to {selected}, not {template}")
    assert not wrong, "\n".join(wrong)


@one_backend
async def test_a_path_two_templates_match_reaches_the_one_with_the_earlier_literal(app: FastAPI) -> None:
    routes = sorted(set(route_table(app.routes)))
    overlaps = [
        (method, *shared)
        for index, (method, first) in enumerate(routes)
        for other_method, second in routes[index + 1:]
        if other_method == method and (shared := shared_path(first, second)) is not None
    ]
    assert len(overlaps) >= 2  # directory and by-slug below, at least
    wrong = []
    for method, path, expected in overlaps:
        selected = await selected_route(app, method, path)
        if selected != expected:
            wrong.append(f"{method} {path} went to {selected}, not {expected}")
    assert not wrong, "\n".join(wrong)


def test_the_overlap_rule() -> None:
    assert shared_path("/c/directory", "/c/{id}") == ("/c/directory", "/c/directory")
    assert shared_path("/c/by-slug/{slug}", "/c/{id}/invites") == ("/c/by-slug/invites", "/c/by-slug/{slug}")
    assert shared_path("/c/{id}/members", "/c/{id}/invites") is None
    assert shared_path("/c/{id}", "/c/{id}/members") is None
    assert shared_path("/c/{id}", "/c/{other}") is None  # one template twice: no literal decides


@one_backend
async def test_the_overlaps_the_router_order_exists_for(app: FastAPI) -> None:
    # A literal segment where another router has a parameter. Asserted apart so that these
    # cases cannot drop out of the table unseen.
    assert await selected_route(app, "GET", "/api/v1/conversations/directory") == "/api/v1/conversations/directory"
    assert (
        await selected_route(app, "GET", f"/api/v1/conversations/{PARAMETER_VALUE}")
        == "/api/v1/conversations/{conversation_id}"
    )
    assert (
        await selected_route(app, "GET", "/api/v1/conversations/by-slug/invites")
        == "/api/v1/conversations/by-slug/{slug}"
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


def awaited_in_loop(call: Callable[..., Any]) -> bool:
    """What FastAPI runs on the event loop rather than in a worker thread: a coroutine
    function, an async generator function, or an object whose ``__call__`` is one."""
    method = getattr(call, "__call__", None)  # noqa: B004 - the method, not callable()
    return any(
        inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate)
        for candidate in (call, method)
    )


def sub_dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from sub_dependants(sub)


@one_backend
async def test_no_dependency_runs_in_a_worker_thread(app: FastAPI) -> None:
    calls = set(dependency_calls(app.routes))
    assert len(calls) >= 5  # the caller, the services, the text check, the roles...
    threaded = sorted(f"{call.__module__}.{call.__qualname__}" for call in calls if not awaited_in_loop(call))
    assert not threaded, f"make these dependencies async def: {threaded}"
