"""Operations: health, readiness, metrics, request ids, headers, errors for unknown routes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("backend")


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["status"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'parley_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics.text
    assert "parley_db_pool_checked_out" in metrics.text


async def test_readiness_fails_when_the_database_is_gone(
    client: httpx.AsyncClient, container: object
) -> None:
    from parley.container import Container

    assert isinstance(container, Container)
    from parley.store.db import Database

    # Only the readiness check is pointed somewhere dead: the services keep the live
    # database, which the app's shutdown disposes after they stop (disposing it here left
    # the search indexer writing through it, and the connections it opened were never closed).
    live, dead = container.db, Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    container.db = dead
    try:
        ready = await client.get("/readyz")
    finally:
        container.db = live
        await dead.dispose()
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "error"


async def test_request_id_and_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert "access-control-allow-origin" not in (
        await client.get("/healthz", headers={"Origin": "https://evil.example"})
    ).headers


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = await client.put("/api/v1/users/me")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    # DELETE erases the account (DESIGN §6.4).
    assert wrong.headers["allow"] in {"DELETE, GET, HEAD, PATCH", "DELETE, GET, PATCH"}


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    big = b'{"username": "' + b"a" * 2_000_000 + b'"}'
    response = await client.post(
        "/api/v1/auth/register", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 65536

    streamed = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/auth/login" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_redis_backends_are_chosen_and_checked(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    from parley.app import create_app
    from parley.jobs.redis_streams import RedisJobQueue
    from parley.security.ratelimit_redis import RedisRateLimiter
    from tests.conftest import test_settings
    from tests.support.redis_fixtures import REDIS_URL

    app = create_app(
        test_settings(tmp_path, database_url, redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    )
    container = app.state.parley
    assert isinstance(container.limiter, RedisRateLimiter)
    assert isinstance(container.jobs, RedisJobQueue)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = (await http.get("/readyz")).json()
    assert ready["checks"]["redis"]["status"] == "ok"


@pytest.mark.settings(hsts_max_age=31536000)
async def test_hsts_when_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_no_hsts_by_default(client: httpx.AsyncClient) -> None:
    assert "strict-transport-security" not in (await client.get("/healthz")).headers
