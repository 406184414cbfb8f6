"""The Redis backends' contract suites (bus, presence, rate limits, jobs) run again against
Redis as production deploys it: behind Sentinel, and as a three-primary cluster, both
started here on free loopback ports. Each suite runs in a child pytest with
``PARLEY_TEST_REDIS_URL`` pointing at the topology (the suites take their Redis from it),
so the very same tests that hold for one server are the ones that must hold here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from parley.redis_urls import RedisTopology, parse_redis_url
from tests.support.paths import REPO
from tests.support.redis_topologies import RedisClusterGroup, SentinelGroup

CONTRACT_SUITES = [
    "tests/contract/test_bus.py",
    "tests/contract/test_presence_store.py",
    "tests/contract/test_ratelimit.py",
    "tests/contract/test_jobs.py",
]


def run_contract_suites(redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLEY_TEST_REDIS_URL": redis_url}
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
            "-k", "redis", *CONTRACT_SUITES,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sentinel_and_cluster_urls_are_parsed() -> None:
    sentinel = parse_redis_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/main/2")
    assert sentinel.topology is RedisTopology.SENTINEL
    assert sentinel.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert (sentinel.service, sentinel.db, sentinel.password) == ("main", 2, "s3cret")
    cluster = parse_redis_url("redis+cluster://[::1]:7000,r2:7001")
    assert cluster.topology is RedisTopology.CLUSTER
    assert cluster.hosts == (("::1", 7000), ("r2", 7001))
    assert parse_redis_url("redis://h:1/0").topology is RedisTopology.SINGLE
    for bad in (
        "redis+sentinel://h:1",  # no service
        "redis+sentinel://h:1/s/x",  # bad db
        "redis+sentinel://h:99999/s",
        "redis+cluster://h:1/3",  # clusters have db 0 only
        "redis+cluster://:1",
        "memcached://h",
        "h:6379",
    ):
        with pytest.raises(ValueError):
            parse_redis_url(bad)
    # A password may hold "/" and "@" (percent-encoded or not); no error quotes any of it.
    slashed = parse_redis_url("redis+sentinel://u:pa/ss@h:26379/main")
    assert (slashed.hosts, slashed.service, slashed.password) == ((("h", 26379),), "main", "pa/ss")
    for bad in ("redis+sentinel://u:hunter/2@h:x/main", "u:hunter2://h", "redis+cluster://u:hunter2@:1"):
        with pytest.raises(ValueError) as refused:
            parse_redis_url(bad)
        assert "hunter" not in str(refused.value)


def test_the_contract_suites_hold_behind_sentinel(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path / "sentinel").start()
    try:
        result = run_contract_suites(group.url)
    finally:
        group.kill()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


def test_the_contract_suites_hold_on_a_three_primary_cluster(tmp_path: Path) -> None:
    """Sharded pub/sub for the bus, hash-tagged presence groups and job keys (each script
    on one slot), single-key rate-limit buckets."""
    cluster = RedisClusterGroup(tmp_path / "cluster").start()
    try:
        result = run_contract_suites(cluster.url)
    finally:
        cluster.kill()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
