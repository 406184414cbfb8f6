"""Redis for tests: ``PARLEY_TEST_REDIS_URL`` (default the local server), a unique key
prefix per test, and the same loud skip / CI failure as PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from parley.presence.redis import CLUSTER_SHARDS
from parley.redis_clients import any_redis_client
from parley.redis_urls import RedisTopology, parse_redis_url
from tests.conftest import need_service

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# What the backends are built for (tests/e2e/scaleout/test_redis_topologies.py runs the suites on each).
TOPOLOGY = parse_redis_url(REDIS_URL).topology
PRESENCE_SHARDS = CLUSTER_SHARDS if TOPOLOGY is RedisTopology.CLUSTER else 1


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = any_redis_client(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        need_service("Redis", "Start it, or set PARLEY_TEST_REDIS_URL=redis://host:port/db.", exc)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: redis.Redis) -> AsyncIterator[str]:
    """A key namespace of this test's own, deleted afterwards."""
    prefix = f"parley-test:{secrets.token_hex(6)}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
    if keys:
        await redis_client.delete(*keys)
