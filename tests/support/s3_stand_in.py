"""S3 for the tests: no S3 service can run here (no MinIO binary, no network), so the S3
tests use moto's ``ThreadedMotoServer`` — a real S3-protocol HTTP server on a free loopback
port, which boto3 talks to exactly as to AWS or MinIO (signed requests, ranged GETs, 404s).

A test module takes the ``s3_endpoint`` fixture with
``from tests.support.s3_stand_in import s3_endpoint  # noqa: F401 (fixture)``, makes a fresh
bucket per test (``new_bucket``, or settings on one with ``s3_settings``) and looks into
it with ``objects_in`` / ``bucket_keys``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from parley.config import Settings
from parley.container import Container
from tests import conftest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole run."""
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "parley-test",
        "AWS_SECRET_ACCESS_KEY": "parley-test-secret",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def new_bucket_name() -> str:
    return f"parley-test-{secrets.token_hex(6)}"


def new_bucket(endpoint: str) -> str:
    """A new, empty bucket on the stand-in: its name."""
    bucket = new_bucket_name()
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=bucket)
    return bucket


def s3_settings(tmp_path: Path, database_url: str, endpoint: str, **overrides: Any) -> Settings:
    """Test settings whose media live in a new, empty bucket under the prefix ``parley``."""
    return conftest.test_settings(
        tmp_path,
        database_url,
        media_backend="s3",
        s3_bucket=new_bucket(endpoint),
        s3_endpoint_url=endpoint,
        s3_prefix="parley",
        **overrides,
    )


def objects_in(endpoint: str, bucket: str) -> list[str]:
    """Every key in the bucket, sorted, read past Parley (straight from S3)."""
    listing = boto3.client("s3", endpoint_url=endpoint, region_name=REGION).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def bucket_keys(container: Container) -> list[str]:
    """Every key in the container's bucket (``objects_in``)."""
    assert container.settings.s3_endpoint_url and container.settings.s3_bucket
    return objects_in(container.settings.s3_endpoint_url, container.settings.s3_bucket)
