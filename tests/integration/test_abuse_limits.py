"""Registration per address, and who may read /metrics (docs/security.md).

Addresses are real client addresses of the ASGI connection (one transport per address).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.usefixtures("backend")

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def at(app: FastAPI) -> AsyncIterator[Client]:
    opened: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 41000))
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://parley.test"))
        return opened[-1]

    yield client
    for http in opened:
        await http.aclose()


@pytest.mark.settings(registrations_per_address=10)
async def test_registration_is_limited_per_address(at: Client) -> None:
    """60 parallel registrations from one address: 10 accounts, 50 refused with 429 — and
    another address still registers."""
    one = at("10.7.0.1")
    responses = await asyncio.gather(
        *(
            one.post("/api/v1/auth/register", json={"username": f"bulk{i}", "password": TEST_PASSWORD})
            for i in range(60)
        )
    )
    counted = Counter(r.status_code for r in responses)
    assert counted == Counter({201: 10, 429: 50}), counted
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
    other = await at("10.7.0.2").post(
        "/api/v1/auth/register", json={"username": "someone", "password": TEST_PASSWORD}
    )
    assert other.status_code == 201


async def test_metrics_default_to_loopback_clients_only(at: Client) -> None:
    assert (await at("127.0.0.1").get("/metrics")).status_code == 200
    assert (await at("::1").get("/metrics")).status_code == 200
    for outsider in ("10.8.0.1", "192.0.2.7", "2001:db8::1"):
        response = await at(outsider).get("/metrics")
        assert response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN"
    # Through a reverse proxy on the same host: the proxy is loopback, the client is not.
    forwarded = await at("127.0.0.1").get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"})
    assert forwarded.status_code == 403


@pytest.mark.settings(metrics_token="scrape-" + "t" * 32, metrics_allow=["10.9.0.0/16"])
async def test_metrics_with_a_token_or_an_allow_list(at: Client) -> None:
    token = "scrape-" + "t" * 32
    scraper = at("192.0.2.9")
    assert (await scraper.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    wrong = await scraper.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "AUTHENTICATION_FAILED"
    assert (await scraper.get("/metrics")).status_code == 401
    assert (await at("10.9.3.4").get("/metrics")).status_code == 200  # allowed network
    # Once a token or an allow-list is set, loopback is not special any more.
    assert (await at("127.0.0.1").get("/metrics")).status_code == 401
