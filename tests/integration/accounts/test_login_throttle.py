"""The failed-login policy (docs/security.md "Login throttling"), over HTTP on both databases.

Parallel guesses are reserved before the password is checked, so a burst is evaluated at
most as often as the policy allows; strangers cannot lock the owner out (per-pair and
per-address allowances, a higher per-username one, backoff instead of a lock, and known
devices exempt); the owner's own success clears their typos.

Addresses are real client addresses of the ASGI connection (one transport per address),
not forwarded headers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_PASSWORD, make_user
from tests.support.gateway_helpers import RawSocket, running_server

pytestmark = pytest.mark.usefixtures("backend")

WRONG = "not the right password"


class Addresses:
    """One HTTP client per client address, all talking to the same app."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._clients: dict[str, httpx.AsyncClient] = {}

    def __call__(self, address: str) -> httpx.AsyncClient:
        if address not in self._clients:
            transport = httpx.ASGITransport(app=self._app, client=(address, 40000))
            self._clients[address] = httpx.AsyncClient(transport=transport, base_url="http://parley.test")
        return self._clients[address]

    async def close(self) -> None:
        for http in self._clients.values():
            await http.aclose()


@pytest.fixture
async def at(app: FastAPI) -> AsyncIterator[Addresses]:
    addresses = Addresses(app)
    yield addresses
    await addresses.close()


async def login(http: httpx.AsyncClient, username: str, password: str, **extra: Any) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/login", json={"username": username, "password": password, **extra}
    )


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


@pytest.mark.settings(login_username_failures_allowed=10)
async def test_a_parallel_burst_from_many_addresses_is_evaluated_at_most_the_allowance(
    client: httpx.AsyncClient, at: Addresses
) -> None:
    """40 parallel logins for one user from 40 addresses (39 wrong, one right): at most the
    per-username allowance (10) reach the password check; the rest are 429 unevaluated."""
    await make_user(client, "alice")
    guesses = [WRONG] * 39 + [TEST_PASSWORD]
    responses = await asyncio.gather(
        *(login(at(f"10.0.0.{i + 1}"), "alice", password) for i, password in enumerate(guesses))
    )
    counted = statuses(responses)
    assert counted[401] + counted[200] <= 10, counted
    assert counted[429] >= 30, counted
    assert set(counted) <= {200, 401, 429}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1


@pytest.mark.settings(login_address_failures_allowed=10)
async def test_a_parallel_burst_from_one_address_is_evaluated_at_most_the_allowance(
    client: httpx.AsyncClient, at: Addresses
) -> None:
    """100 parallel guesses for one user from one address: at most 5 (the pair's allowance)
    are evaluated; 100 for 100 different usernames: at most 10 (the address's)."""
    await make_user(client, "bob")
    one_user = await asyncio.gather(*(login(at("10.1.0.1"), "bob", WRONG) for _ in range(100)))
    assert statuses(one_user)[401] <= 5 and statuses(one_user)[429] >= 95, statuses(one_user)
    many = await asyncio.gather(*(login(at("10.1.0.2"), f"user{i}", WRONG) for i in range(100)))
    assert statuses(many)[401] <= 10 and statuses(many)[429] >= 90, statuses(many)


async def test_a_stranger_cannot_lock_the_owner_out(client: httpx.AsyncClient, at: Addresses) -> None:
    """Twenty wrong passwords from another address slow the stranger down, not the owner."""
    await make_user(client, "carol")
    stranger = [await login(at("10.2.0.1"), "carol", WRONG) for _ in range(20)]
    assert statuses(stranger)[401] == 5 and statuses(stranger)[429] == 15
    owner = await login(at("10.2.0.2"), "carol", TEST_PASSWORD)
    assert owner.status_code == 200


@pytest.mark.settings(login_address_failures_allowed=5)
async def test_unknown_usernames_from_a_shared_address_spare_known_devices(
    client: httpx.AsyncClient, at: Addresses
) -> None:
    """Behind one NAT address, someone tries unknown usernames until the address backs off;
    a colleague whose device logged in before still gets in (the device token); a first-time
    login from that address waits like everyone else there."""
    office = at("10.3.0.1")
    await make_user(client, "dave")
    earlier = await login(office, "dave", TEST_PASSWORD)
    device_token = earlier.json()["device_token"]
    for i in range(5):
        assert (await login(office, f"ghost{i}", WRONG)).status_code == 401
    assert (await login(office, "ghost9", WRONG)).status_code == 429
    assert (await login(office, "dave", TEST_PASSWORD)).status_code == 429  # no device token
    known = await login(office, "dave", TEST_PASSWORD, device_token=device_token)
    assert known.status_code == 200


@pytest.mark.settings(login_username_failures_allowed=5)
async def test_a_distributed_attack_on_one_user_spares_the_owners_known_device(
    client: httpx.AsyncClient, at: Addresses
) -> None:
    """Guessers on many addresses exhaust the username's allowance: new devices wait, the
    owner's known device (its cookie from an earlier cookie-mode login) does not — and the
    known device's own failures are limited like a pair's."""
    await make_user(client, "erin")
    browser = at("10.4.0.1")
    first = await browser.post(
        "/api/v1/auth/login", json={"username": "erin", "password": TEST_PASSWORD, "cookie": True}
    )
    assert first.status_code == 200 and "device_token" not in first.json()
    assert "parley_device" in browser.cookies
    for i in range(5):
        assert (await login(at(f"10.5.0.{i}"), "erin", WRONG)).status_code == 401
    assert (await login(at("10.5.1.1"), "erin", WRONG)).status_code == 429
    assert (await login(at("10.5.1.2"), "erin", TEST_PASSWORD)).status_code == 429
    owner = await browser.post("/api/v1/auth/login", json={"username": "erin", "password": TEST_PASSWORD})
    assert owner.status_code == 200  # the device cookie went along
    typos = [await login(browser, "erin", WRONG) for _ in range(6)]
    assert statuses(typos) == Counter({401: 5, 429: 1})


async def test_a_stolen_device_token_of_another_user_is_no_bypass(
    client: httpx.AsyncClient, at: Addresses
) -> None:
    await make_user(client, "frank")
    mallory = await make_user(client, "mallory")
    token = (await login(at("10.6.0.1"), "mallory", mallory.password)).json()["device_token"]
    attempts = [await login(at("10.6.0.1"), "frank", WRONG, device_token=token) for _ in range(6)]
    assert statuses(attempts) == Counter({401: 5, 429: 1})
    forged_token = token[:-10] + ("B" if token[-10] == "A" else "A") + token[-9:]  # signature changed
    forged = await login(at("10.6.0.2"), "frank", WRONG, device_token=forged_token)
    assert forged.status_code == 401


@pytest.mark.settings(login_backoff_base_seconds=0.2, login_backoff_max_seconds=0.4)
async def test_backoff_slows_guessing_instead_of_locking(client: httpx.AsyncClient) -> None:
    await make_user(client, "gina")
    for _ in range(5):
        assert (await login(client, "gina", WRONG)).status_code == 401
    refused = await login(client, "gina", TEST_PASSWORD)
    assert refused.status_code == 429
    retry_after = refused.json()["error"]["retry_after"]
    assert 0 < retry_after <= 0.2
    await asyncio.sleep(retry_after + 0.05)
    assert (await login(client, "gina", WRONG)).status_code == 401  # one more, evaluated
    again = await login(client, "gina", WRONG)
    assert again.status_code == 429 and 0.2 < again.json()["error"]["retry_after"] <= 0.4
    await asyncio.sleep(again.json()["error"]["retry_after"] + 0.05)
    assert (await login(client, "gina", TEST_PASSWORD)).status_code == 200


async def test_the_owners_success_clears_their_typos(client: httpx.AsyncClient) -> None:
    await make_user(client, "hank")
    for _ in range(4):
        assert (await login(client, "hank", WRONG)).status_code == 401
    assert (await login(client, "hank", TEST_PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await login(client, "hank", WRONG)).status_code == 401
    assert (await login(client, "hank", TEST_PASSWORD)).status_code == 200


async def test_anonymous_socket_frames_cannot_flush_failed_login_state(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    """A real server whose limiter tables hold 50 keys each: 80 anonymous sockets, each
    pinging (each a fresh frame-rate key), fill the gateway's table many times over — the
    locked-out guesser is still backing off. (With one shared table, every anonymous
    frame's key pushed the oldest failed-login state out, restoring the guesses.)"""
    async with running_server(
        tmp_path,
        database_url,
        free_port,
        rate_limit_max_keys=50,
        gateway_frame_burst=60,
        login_backoff_base_seconds=600,  # outlasts the test however slow the machine
    ) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await make_user(http, "ivan")
            for _ in range(5):
                assert (await login(http, "ivan", WRONG)).status_code == 401
            assert (await login(http, "ivan", WRONG)).status_code == 429
            for _ in range(80):
                socket = await RawSocket.open(server.base_url)
                await socket.send({"op": "ping"})
                assert (await socket.recv_op("pong"))["op"] == "pong"
                await socket.close()
            assert (await login(http, "ivan", WRONG)).status_code == 429


@pytest.mark.settings(login_username_failures_allowed=3)
async def test_the_sdk_logs_in_as_a_known_device(app: FastAPI, at: Addresses) -> None:
    """The SDK keeps the device token of its last login and sends it with the next: under
    a distributed attack on its username it still gets in."""
    from parley.client import ParleyClient

    transport = httpx.ASGITransport(app=app, client=("10.10.0.1", 40000))
    async with ParleyClient("http://parley.test", transport=transport) as sdk:
        await sdk.register("judy", TEST_PASSWORD)
        await sdk.login("judy", TEST_PASSWORD)
        assert sdk.device_token
        for i in range(3):
            assert (await login(at(f"10.11.0.{i}"), "judy", WRONG)).status_code == 401
        assert (await login(at("10.11.1.1"), "judy", TEST_PASSWORD)).status_code == 429
        await sdk.login("judy", TEST_PASSWORD)
        assert sdk.user is not None and sdk.user["username"] == "judy"
