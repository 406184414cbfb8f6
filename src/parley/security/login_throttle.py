"""The failed-login policy: who may try a password, and how often (docs/security.md).

Every login attempt is *reserved* before the password is verified — counted as a failure
at once, atomically with the decision — and given back when the password was right. So a
burst of parallel guesses can never all be evaluated before the first failure counts.

An attempt counts against, in this order (the first refusal stops it, and what the earlier
keys took is given back):

1. the client address (IPv6 by /64: one host holds a whole /64) — a higher allowance,
   since many people may share one address;
2. the (username, address) pair — the tight allowance: one guesser at one user;
3. the username from any address — the highest allowance: guessers spread over many
   addresses.

Past its allowance each key backs off exponentially (never a hard lock), and forgets its
failures after a quiet period. A login from a **known device** — one presenting the signed
device token an earlier successful login of this user handed out — counts only against that
device's own key: a stranger's failures (on the username or a shared address) never stop
the owner's own devices. A successful login also clears its (username, address) pair: the
owner's own typos do not linger.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from parley.errors import RateLimited
from parley.security.ratelimit import Backoff, RateLimiter

# IPv6 clients are keyed by their /64: a single host is routinely given a whole /64, so
# keying by full address would give one attacker 2**64 fresh allowances.
IPV6_PREFIX = 64
UNKNOWN_ADDRESS = "-"
TOO_MANY = "Too many failed logins; try again later"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    pair: Backoff  # (username, address), and a known device's own key
    address: Backoff  # any username from one address
    username: Backoff  # one username from any address


@dataclass(frozen=True, slots=True)
class Reservation:
    """The attempts a login took; handed back to :meth:`LoginThrottle.succeeded`."""

    taken: tuple[tuple[str, Backoff], ...]
    clear_on_success: str  # the pair's or the device's key


def address_key(address: str) -> str:
    """The address as throttled: IPv4 as is, IPv6 as its /64 network."""
    if not address:
        return UNKNOWN_ADDRESS
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def username_key(username: str) -> str:
    """A fixed-size key for any username typed (known or not, any length)."""
    normal = username.strip().lower()
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginThrottle:
    def __init__(self, limiter: RateLimiter, policy: LoginPolicy) -> None:
        self._limiter = limiter
        self._policy = policy

    async def reserve(self, username: str, address: str, *, device_id: str | None) -> Reservation:
        """Count this attempt before the password is checked; ``RateLimited`` when a key is
        backing off."""
        policy = self._policy
        if device_id is not None:
            device = f"login:device:{device_id}"
            keys: tuple[tuple[str, Backoff], ...] = ((device, policy.pair),)
            clear = device
        else:
            name, where = username_key(username), address_key(address)
            clear = f"login:pair:{name}:{where}"
            keys = (
                (f"login:address:{where}", policy.address),
                (clear, policy.pair),
                (f"login:user:{name}", policy.username),
            )
        taken: list[tuple[str, Backoff]] = []
        for key, backoff in keys:
            decision = await self._limiter.attempt(key, backoff)
            if not decision.allowed:
                for earlier, earlier_backoff in taken:
                    await self._limiter.refund(earlier, earlier_backoff)
                raise RateLimited(decision.retry_after, TOO_MANY)
            taken.append((key, backoff))
        return Reservation(tuple(taken), clear)

    async def succeeded(self, reservation: Reservation) -> None:
        """The password was right: the pair (or device) starts afresh; the shared keys get
        this one attempt back (not all: a guesser with an account of their own must not be
        able to wipe an address's or a username's count by logging in)."""
        for key, backoff in reservation.taken:
            if key == reservation.clear_on_success:
                await self._limiter.reset(key)
            else:
                await self._limiter.refund(key, backoff)
