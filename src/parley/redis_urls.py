"""Where Redis is: ``PARLEY_REDIS_URL`` parsed (``redis_clients`` makes the clients).

Three shapes (docs/scaling.md "Redis"):

- ``redis://[user:password@]host:port/db`` (and ``rediss://``, ``unix://``): one server, as
  redis-py reads it.
- ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]``: Sentinel. The
  sentinels are asked for the primary of ``service`` whenever a connection is made, so after
  a failover every reconnect reaches the new primary (redis-py's ``SentinelConnectionPool``;
  Sentinel itself kills the old primary's client connections when it demotes it). The
  credentials are the data nodes'; the sentinels are reached without.
- ``redis+cluster://[user:password@]host:port[,host:port…]``: Redis Cluster; the hosts are
  seeds, the slot map is read from them (``redis.asyncio.cluster.RedisCluster``).

A failover or a resharding looks to Parley like a Redis restart: the bus resubscribes and
its sessions resume by seq (``bus/redis.py``); nothing in Redis is the source of truth.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import unquote

from parley.url_text import check_url_text, shown_scheme


class RedisTopology(enum.Enum):
    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class RedisLocation:
    topology: RedisTopology
    url: str  # the URL as given (SINGLE: what redis-py parses)
    hosts: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seeds
    service: str = ""  # Sentinel: the monitored primary's name
    db: int = 0
    username: str | None = None
    password: str | None = None


SENTINEL_PORT = 26379
CLUSTER_PORT = 6379


def parse_redis_url(url: str) -> RedisLocation:
    """Read ``PARLEY_REDIS_URL``; ValueError names what is wrong."""
    check_url_text(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("must be a redis://, redis+sentinel:// or redis+cluster:// URL")
    if scheme in ("redis", "rediss", "unix"):
        return RedisLocation(RedisTopology.SINGLE, url)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(f"unknown Redis URL scheme ({shown_scheme(url)})")
    # The credentials first (up to the last "@"): a password may hold a "/", and no error
    # below quotes any of it.
    userinfo, at, located = rest.rpartition("@")
    authority, _, path = located.partition("/")
    path = path.partition("?")[0]
    username = password = None
    if at:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinel = scheme == "redis+sentinel"
    hosts = tuple(
        _host_port(part, SENTINEL_PORT if sentinel else CLUSTER_PORT)
        for part in authority.split(",")
    )
    segments = [unquote(s) for s in path.split("/") if s]
    if sentinel:
        if not segments:
            raise ValueError("redis+sentinel:// needs the service name: .../mymaster")
        if len(segments) > 2:
            raise ValueError("redis+sentinel:// path is /service or /service/db")
        db = _db(segments[1]) if len(segments) == 2 else 0
        return RedisLocation(
            RedisTopology.SENTINEL, url, hosts, segments[0], db, username, password
        )
    if segments and segments != ["0"]:
        raise ValueError("Redis Cluster has only database 0")
    return RedisLocation(RedisTopology.CLUSTER, url, hosts, "", 0, username, password)


def _host_port(part: str, default_port: int) -> tuple[str, int]:
    part = part.strip()
    if part.startswith("["):  # [IPv6]:port
        host, _, tail = part[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise ValueError(f"no host in {part!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"bad port in {part!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {part!r}")
    return host, port


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        raise ValueError(f"bad database number {text!r}")
    return int(text)


def slot_tagged(prefix: str, topology: RedisTopology) -> str:
    """Key prefix for keys that one script or transaction touches together: on a cluster
    wrapped in a hash tag (``{prefix}``), so they all live in one slot; elsewhere as is
    (existing deployments keep their key names)."""
    return f"{{{prefix}}}" if topology is RedisTopology.CLUSTER else prefix
