"""``S3BlobStore``: blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).

The only module that imports boto3. boto3 is synchronous, so every call runs in a worker
thread (``asyncio.to_thread``); one client is shared, which boto3 documents as thread-safe.
Objects appear atomically in S3 (a PUT is all or nothing), which gives the ``put_file``
guarantee without a rename step. ``endpoint_url`` points at MinIO or another compatible
service; path-style addressing is used because such services rarely have bucket DNS names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from parley.media.blobstore import CHUNK_SIZE, BlobInfo, BlobNotFound, check_key, is_key

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


class S3BlobStream:
    def __init__(self, body: Any, size: int) -> None:
        self.size = size
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk: bytes = await asyncio.to_thread(self._body.read, CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        await asyncio.to_thread(self._body.close)


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        max_pool_connections: int = 20,
    ) -> None:
        self.bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=max_pool_connections,
            ),
        )

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (development and tests; production
        buckets are usually made by the operator, with their own policies)."""

        def ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as error:
                if not _is_missing(error):
                    raise
                self._client.create_bucket(Bucket=self.bucket)

        await asyncio.to_thread(ensure)

    async def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        name = self._key(key)

        def put() -> None:
            with source.open("rb") as body:
                self._client.put_object(
                    Bucket=self.bucket, Key=name, Body=body, ContentType=content_type
                )

        await asyncio.to_thread(put)

    async def stat(self, key: str) -> BlobInfo:
        name = self._key(key)
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _is_missing(error):
                raise BlobNotFound(key) from None
            raise
        return BlobInfo(key, int(head["ContentLength"]))

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> S3BlobStream:
        name = self._key(key)
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start > 0 or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = await asyncio.to_thread(self._client.get_object, **arguments)
        except ClientError as error:
            if _is_missing(error):
                raise BlobNotFound(key) from None
            raise
        size = int(response["ContentLength"])
        content_range = str(response.get("ContentRange") or "")
        if "/" in content_range:  # "bytes 0-99/1234": the total is after the slash
            size = int(content_range.rsplit("/", 1)[1])
        return S3BlobStream(response["Body"], size)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(
            self._client.delete_object, Bucket=self.bucket, Key=self._key(key)
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except BlobNotFound:
            return False
        return True

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        # ListObjectsV2 a page (up to 1,000 keys) per request, each fetched in a thread.
        pages = iter(self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._prefix))
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            for item in page.get("Contents", []):
                key = str(item["Key"]).removeprefix(self._prefix)
                if is_key(key):  # not a "folder/" marker or another tool's object
                    yield BlobInfo(key, int(item["Size"]))

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
