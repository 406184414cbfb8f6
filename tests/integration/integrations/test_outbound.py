"""The outbound HTTP guard (parley/outbound.py) against a real HTTP server on loopback.

Loopback is exactly what the guard refuses by default, so the refusal tests point it at a
live server and assert that no connection ever arrived; the tests that need an answer use
``allow_private`` (as Parley's own tests of push and previews do).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from parley.config import Settings
from parley.outbound import (
    OutboundClient,
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    ResponseTooLarge,
    check_url,
    is_allowed,
    is_public_address,
    policy_from,
)

Route = Callable[["Seen"], bytes]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackServer:
    port: int
    routes: dict[str, Route]
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    state = LoopbackServer(port=0, routes={})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, path, headers, body)
            state.seen.append(seen)
            route = state.routes.get(path, lambda _: answer(404, b"no route"))
            writer.write(route(seen))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up; the test asserts what it saw
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.fixture
async def private_client() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundPolicy(allow_private=True, timeout_seconds=5))
    yield client
    await client.close()


@pytest.fixture
async def guarded_client() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundPolicy(timeout_seconds=5))
    yield client
    await client.close()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.10", "::1", "::", "fe80::1",
        "fd00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1",
        "2002:7f00:1::", "2001:db8::1",
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_denied_networks_hold_even_when_private_is_allowed() -> None:
    policy = OutboundPolicy(allow_private=True)
    assert is_allowed(ipaddress.ip_address("10.0.0.5"), policy)
    assert not is_allowed(ipaddress.ip_address("169.254.169.254"), policy)
    assert not is_allowed(ipaddress.ip_address("::ffff:169.254.169.254"), policy)
    assert not is_allowed(ipaddress.ip_address("fe80::1"), policy)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x", "file:///etc/passwd", "gopher://example.com", "http:///nohost",
        "http://user:pass@example.com/", "http://127.0.0.1/", "http://[::1]:8080/",
        "http://169.254.169.254/latest/meta-data/", "not a url", "http://exa\x00mple.com/",
    ],
)
def test_check_url_refuses_without_the_network(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url, OutboundPolicy())


def test_policy_from_settings_reads_every_field(tmp_path: object) -> None:
    settings = Settings(
        outbound_allow_private=True,
        outbound_timeout_seconds=3,
        outbound_max_response_bytes=4096,
        outbound_denied_networks=["10.9.0.0/16"],
    )
    policy = policy_from(settings)
    assert policy.allow_private and policy.timeout_seconds == 3
    assert policy.max_response_bytes == 4096
    assert policy.denied_networks == (ipaddress.ip_network("10.9.0.0/16"),)
    with pytest.raises(ValueError):
        Settings(outbound_denied_networks=["10.0.0.0/33"])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1"])
async def test_loopback_is_refused_before_connecting(
    server: LoopbackServer, guarded_client: OutboundClient, host: str
) -> None:
    server.routes["/"] = lambda _: answer(200, b"secret")
    with pytest.raises(OutboundRefused):
        await guarded_client.request("GET", server.url("/", host=host))
    assert server.connections == 0


async def test_an_allowed_request_reads_the_body(
    server: LoopbackServer, private_client: OutboundClient
) -> None:
    server.routes["/hook"] = lambda seen: answer(200, b"got " + seen.body)
    response = await private_client.request(
        "POST", server.url("/hook"), headers={"content-type": "text/plain"}, content=b"ping"
    )
    assert (response.status, response.body) == (200, b"got ping")
    assert server.seen[0].headers["user-agent"].startswith("Parley")


async def test_redirects_are_followed_only_when_asked_and_each_hop_is_checked(
    server: LoopbackServer,
) -> None:
    server.routes["/start"] = lambda _: answer(302, headers={"location": "/end"})
    server.routes["/end"] = lambda _: answer(200, b"end")
    server.routes["/to-denied"] = lambda _: answer(
        302, headers={"location": f"http://127.0.0.2:{server.port}/end"}
    )
    policy = OutboundPolicy(
        allow_private=True, denied_networks=(ipaddress.ip_network("127.0.0.2/32"),)
    )
    client = OutboundClient(policy)
    try:
        not_followed = await client.request("GET", server.url("/start"))
        assert not_followed.status == 302
        followed = await client.request("GET", server.url("/start"), follow_redirects=True)
        assert (followed.status, followed.body) == (200, b"end")
        assert followed.redirects == (server.url("/start"),)
        with pytest.raises(OutboundRefused):
            await client.request("GET", server.url("/to-denied"), follow_redirects=True)
    finally:
        await client.close()
    assert [seen.path for seen in server.seen] == ["/start", "/start", "/end", "/to-denied"]


async def test_a_redirect_loop_stops_at_the_limit(
    server: LoopbackServer, private_client: OutboundClient
) -> None:
    server.routes["/loop"] = lambda _: answer(301, headers={"location": "/loop"})
    with pytest.raises(OutboundError, match="redirects"):
        await private_client.request("GET", server.url("/loop"), follow_redirects=True)
    assert len(server.seen) == private_client.policy.max_redirects + 1


async def test_a_303_after_post_continues_as_a_get_without_the_body(
    server: LoopbackServer, private_client: OutboundClient
) -> None:
    server.routes["/form"] = lambda _: answer(303, headers={"location": "/done"})
    server.routes["/done"] = lambda seen: answer(200, seen.method.encode())
    response = await private_client.request(
        "POST", server.url("/form"), content=b"x" * 10, follow_redirects=True
    )
    assert response.body == b"GET"
    assert server.seen[1].body == b""


async def test_bodies_past_the_limit_are_refused(
    server: LoopbackServer, private_client: OutboundClient
) -> None:
    server.routes["/big"] = lambda _: answer(200, b"x" * 5000)
    with pytest.raises(ResponseTooLarge):
        await private_client.request("GET", server.url("/big"), max_response_bytes=4096)
    small = await private_client.request("GET", server.url("/big"), max_response_bytes=5000)
    assert len(small.body) == 5000


async def test_cookies_are_never_kept_or_sent(
    server: LoopbackServer, private_client: OutboundClient
) -> None:
    server.routes["/set"] = lambda _: answer(200, headers={"set-cookie": "sid=abc; Path=/"})
    server.routes["/next"] = lambda _: answer(200)
    await private_client.request("GET", server.url("/set"))
    await private_client.request("GET", server.url("/next"))
    assert "cookie" not in server.seen[1].headers


async def test_a_silent_server_times_out() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # never answers; returns when the client gives up
        finally:
            writer.close()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = OutboundClient(OutboundPolicy(allow_private=True, timeout_seconds=0.3))
    try:
        with pytest.raises(OutboundError, match="no answer|Timeout"):
            await client.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        await client.close()
        listener.close()
        await listener.wait_closed()


async def test_refused_connections_are_outbound_errors(private_client: OutboundClient) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(OutboundError):
        await private_client.request("GET", f"http://127.0.0.1:{port}/")


async def test_parallel_requests_are_each_guarded(
    server: LoopbackServer, guarded_client: OutboundClient, private_client: OutboundClient
) -> None:
    server.routes["/"] = lambda _: answer(200, b"ok")
    refused = await asyncio.gather(
        *(guarded_client.request("GET", server.url("/")) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(result, OutboundRefused) for result in refused)
    assert server.connections == 0
    allowed = await asyncio.gather(*(private_client.request("GET", server.url("/")) for _ in range(20)))
    assert {response.body for response in allowed} == {b"ok"}


def test_the_guard_is_installed_in_httpx() -> None:
    """The guard replaces the transport's pool; if httpx moves it, this fails loudly."""
    client = OutboundClient(OutboundPolicy())
    transport = client._client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert type(transport._pool._network_backend).__name__ == "GuardedBackend"
