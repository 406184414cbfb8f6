"""Outbound HTTP: every request Parley makes to a URL someone else chose (DESIGN §6.0).

Push services, link previews, webhooks and slash commands all fetch URLs that a user, a
browser or a remote page named. Without a guard, any of them is a server-side request
forgery: a link to ``http://169.254.169.254/`` or ``http://localhost:6379/`` would make the
server read its cloud metadata or talk to its own Redis. So every such request goes through
:class:`OutboundClient`, which

- refuses private, loopback, link-local, multicast and reserved addresses — checked on the
  addresses a host name *resolves to*, at connect time, and the connection is made to the
  address that was checked, so a name that resolves to a public address for a check and to
  a private one a moment later (DNS rebinding) cannot slip through;
- follows redirects itself, at most ``max_redirects``, each hop checked the same way;
- never sends or keeps cookies, never uses a proxy from the environment;
- bounds the time of the whole exchange and the size of the body it reads.

``PARLEY_OUTBOUND_ALLOW_PRIVATE=true`` lifts the address rule (tests on loopback; intranet
webhooks); nothing else does.

Errors::

    OutboundError           the request could not be made or answered within the limits
    ├── OutboundRefused     the URL or an address it resolved to is not allowed
    └── ResponseTooLarge    the body passed max_response_bytes
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpcore
import httpx

from parley.config import Settings

# The schemes an outbound URL may use.
ALLOWED_SCHEMES = frozenset({"http", "https"})
# Redirect statuses that carry a Location to follow.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Refused even where private addresses are allowed: link-local is where cloud metadata
# services answer (169.254.169.254, fd00:ec2::254 aside), and no webhook lives there.
DEFAULT_DENIED_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv6Network("fe80::/10"),
)


class OutboundError(Exception):
    """An outbound request failed: refused, timed out, unreachable or too large."""


class OutboundRefused(OutboundError):
    """The URL, or an address its host resolved to, is not one Parley may reach."""


class ResponseTooLarge(OutboundError):
    """The response body passed the policy's size limit (nothing past it was read)."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    # Whether private and loopback addresses may be reached (not the denied networks).
    allow_private: bool = False
    # Never reached, whatever allow_private says.
    denied_networks: tuple[IPNetwork, ...] = DEFAULT_DENIED_NETWORKS
    # The whole exchange — resolution, connection, redirects, body — within this.
    timeout_seconds: float = 10.0
    max_response_bytes: int = 1_048_576
    max_redirects: int = 3
    # Sent with every request so remote operators can tell who calls them.
    user_agent: str = "Parley (+https://github.com/parley-chat)"


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # after redirects
    redirects: tuple[str, ...] = field(default=())


def policy_from(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy(
        allow_private=settings.outbound_allow_private,
        timeout_seconds=settings.outbound_timeout_seconds,
        max_response_bytes=settings.outbound_max_response_bytes,
        denied_networks=tuple(
            ipaddress.ip_network(network, strict=False)
            for network in settings.outbound_denied_networks
        ),
    )


def is_allowed(address: IPAddress, policy: OutboundPolicy) -> bool:
    """The address rule: never a denied network; otherwise public, or private if allowed."""
    if any(address in network for network in policy.denied_networks):
        return False
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if any(ip in network for ip in embedded for network in policy.denied_networks):
        return False
    return policy.allow_private or is_public_address(address)


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address.

    ``is_global`` excludes private (RFC 1918, fc00::/7), loopback, link-local, shared
    (100.64/10), documentation, benchmarking and reserved ranges; multicast is excluded
    on top. An IPv6 address that carries an IPv4 one (mapped ``::ffff:a.b.c.d``, NAT64
    ``64:ff9b::/96``, 6to4, Teredo) must also carry a public one: a gateway would deliver
    it to that IPv4 address.
    """
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return all(is_public_address(embedded) for embedded in _embedded_ipv4(address))
    return True


# RFC 6052's well-known prefix: 64:ff9b::a.b.c.d reaches a.b.c.d through a NAT64 gateway.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        embedded.extend(address.teredo)
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ip for ip in embedded if ip is not None]


def check_url(url: str, policy: OutboundPolicy) -> httpx.URL:
    """Parse ``url`` and refuse what can be refused without the network: other schemes,
    credentials in the URL, a missing host, and literal addresses that are not public.
    Use it where a URL is configured (a webhook), to answer 400 at once; the connect-time
    check still runs for every request."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise OutboundRefused("only http and https URLs are allowed")
    if not parsed.host:
        raise OutboundRefused("the URL has no host")
    if parsed.userinfo:
        raise OutboundRefused("credentials in the URL are not allowed")
    literal = _literal_address(parsed.host)
    if literal is not None and not is_allowed(literal, policy):
        raise OutboundRefused(f"{literal} is not an address Parley may reach")
    return parsed


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address rule applied where sockets are opened.

    The host is resolved here, every address it resolves to is checked (one private
    answer refuses the host: a name that mixes public and private answers is not one to
    trust), and the connection goes to a checked address. TLS still verifies the
    certificate against the host name: httpcore passes the name to ``start_tls`` itself.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # _resolve never returns an empty list
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        literal = _literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (socket.gaierror, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            # sockaddr[0] is the address text; an IPv6 scope ("fe80::1%eth0") is cut off.
            addresses = list(
                dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
            )
            if not addresses:
                raise httpcore.ConnectError(f"{host} has no address")
        refused = [address for address in addresses if not is_allowed(address, self._policy)]
        if refused:
            raise OutboundRefused(f"{host} resolves to {refused[0]}, not an address Parley may reach")
        return addresses


class OutboundClient:
    """The one way Parley makes HTTP requests to URLs it does not control.

    One per process (it pools connections); ``close`` it on shutdown.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        # httpx does not take a network backend yet (encode/httpx#3749 proposes it), so the
        # transport's connection pool is rebuilt with the guarded backend. The attribute is
        # httpx's own; the test suite fails loudly if it ever moves.
        if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx's transport layout changed: outbound guard not applied")
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(policy.timeout_seconds),
            headers={"user-agent": policy.user_agent},
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = False,
        max_response_bytes: int | None = None,
    ) -> OutboundResponse:
        """Send one request and read its body, within the policy.

        Redirects are followed only when asked (a GET for a preview; never a POST to a push
        service or webhook, whose body must not be replayed elsewhere); a 303, or a 301/302
        after anything but GET/HEAD, continues as a body-less GET as browsers do.
        """
        limit = self.policy.max_response_bytes if max_response_bytes is None else max_response_bytes
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                return await self._exchange(method, url, headers, content, follow_redirects, limit)
        except TimeoutError as exc:
            raise OutboundError(f"no answer within {self.policy.timeout_seconds:g} s") from exc
        except httpx.HTTPError as exc:
            raise OutboundError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        follow_redirects: bool,
        limit: int,
    ) -> OutboundResponse:
        hops: list[str] = []
        while True:
            target = check_url(url, self.policy)
            request = self._client.build_request(method, target, headers=headers, content=content)
            request.headers.pop("cookie", None)  # the client keeps no cookies for anyone
            response = await self._client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if follow_redirects and response.status_code in REDIRECT_STATUSES and location:
                    if len(hops) >= self.policy.max_redirects:
                        raise OutboundError(f"more than {self.policy.max_redirects} redirects")
                    hops.append(str(target))
                    url = str(target.join(location))
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method not in ("GET", "HEAD")
                    ):
                        method, content = "GET", None
                    continue
                body = await _read_limited(response, limit)
                return OutboundResponse(
                    status=response.status_code,
                    headers=response.headers,
                    body=body,
                    url=str(target),
                    redirects=tuple(hops),
                )
            finally:
                await response.aclose()
                self._client.cookies.clear()

    async def close(self) -> None:
        await self._client.aclose()


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"the body is {declared} bytes, more than {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"the body passed {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
