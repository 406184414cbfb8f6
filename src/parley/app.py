"""The ASGI application: wiring only (routers, middleware, lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from parley import __version__
from parley.api import (
    account,
    admin,
    auth,
    avatars,
    bots,
    commands,
    contacts,
    conversations,
    e2ee,
    email_links,
    groups,
    lifecycle,
    link_previews,
    messages,
    moderation,
    notifications,
    ops,
    search,
    threads,
    users,
    web,
    webhooks,
)
from parley.api.deps import check_request_text
from parley.api.errors import install_error_handlers
from parley.api.limits import BodySizeLimit
from parley.api.openapi import install_openapi
from parley.api.ports import ApiServices
from parley.api.uploads import router as uploads_router
from parley.config import Settings
from parley.container import Container, build_container
from parley.gateway import endpoint as gateway_endpoint
from parley.gateway.node import Gateway
from parley.gateway.shutdown import install_going_away
from parley.observability.gc_policy import server_collection
from parley.observability.requests import RequestObserver
from parley.security.headers import SecurityHeaders
from parley.store import migrate


def create_app(settings: Settings | None = None, *, run_migrations: bool = False) -> FastAPI:
    """Build the app. ``run_migrations`` upgrades the schema at start (single-node mode)."""
    settings = settings or Settings()
    container = build_container(settings)
    gateway = Gateway(container.gateway_services())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await migrate.upgrade(container.db)
        await container.start()
        await gateway.start()
        # What is built so far lives as long as the process: frozen out of the collector's
        # sight; thresholds for a server's traffic (both explained in gc_policy.py).
        with server_collection(container.metrics.gc_pauses):
            uninstall_going_away = install_going_away(gateway)
            try:
                yield
            finally:
                uninstall_going_away()
                await gateway.close()  # every session gets 1001 before the batch is flushed
                await container.close()

    app = ParleyApp(
        title="Parley",
        version=__version__,
        description="Self-hosted real-time team chat. WebSocket protocol: docs/protocol.md.",
        lifespan=lifespan,
    )
    routers_view: ApiServices = container  # what the routers see of it (mypy: it fits)
    app.state.parley = routers_view
    app.state.gateway = gateway
    install_error_handlers(app)
    install_openapi(app)
    # Busiest first: FastAPI tries a request's path against every route in this order (about
    # 1.4 µs each), so a send no longer walks the 55 account and admin routes before its own.
    # Order only decides where two templates match one path; tests/integration/
    # test_route_table.py checks that every route is the one its own path reaches.
    for router in (
        ops.router,
        groups.router,  # before conversations: /conversations/directory
        conversations.router,
        messages.router,
        threads.router,
        search.router,
        users.router,
        contacts.router,
        auth.router,
        account.router,
        avatars.router,
        admin.router,
        moderation.router,
        uploads_router,
        link_previews.router,
        notifications.router,
        email_links.router,
        lifecycle.router,
        bots.router,
        webhooks.router,
        webhooks.hooks_router,
        commands.router,
        e2ee.router,
    ):
        # Path and query parameters of every API route are checked for NUL and unpaired
        # surrogates before anything else sees them (bodies: RequestModel).
        app.include_router(router, dependencies=[Depends(check_request_text)])
    app.include_router(web.router)  # last: the web client's pages and files

    # Outermost last: observe → security headers → CORS → body limit → routes (/ws: ParleyApp).
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_body_bytes,
        # The upload route enforces the exact per-kind limit itself while streaming; this
        # outer cap only adds room for the multipart framing.
        overrides={
            "/api/v1/uploads": settings.max_attachment_bytes + 64 * 1024,
            "/api/v1/users/me/avatar": settings.max_image_bytes + 64 * 1024,
        },
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            allow_credentials=True,
        )
    app.add_middleware(SecurityHeaders, hsts_max_age=settings.hsts_max_age)
    app.add_middleware(RequestObserver, metrics=container.metrics, access_log=settings.access_log)
    return app


class ParleyApp(FastAPI):
    """FastAPI, with ``/ws`` entered before all of it: FastAPI's own middleware and
    Parley's, and the router (``parley.gateway.endpoint`` explains why it is not a route)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if gateway_endpoint.is_upgrade(scope):
            scope["app"] = self
            await gateway_endpoint.serve_upgrade(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def container_of(app: FastAPI) -> Container:
    container: Container = app.state.parley
    return container
