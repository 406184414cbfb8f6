"""Chooses the ``BlobStore`` from settings — the one place that does (like ``backends``).

``local`` needs nothing; ``s3`` imports the boto3 adapter only when chosen, so a laptop
install never loads boto3.
"""

from __future__ import annotations

from parley.config import Settings
from parley.media.blobstore import BlobStore
from parley.media.local import LocalBlobStore


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.media_backend == "local":
        return LocalBlobStore(settings.media_dir)
    if not settings.s3_bucket:
        raise ValueError("media_backend = 's3' needs s3_bucket (PARLEY_S3_BUCKET)")
    from parley.media.s3 import S3BlobStore

    secret = settings.s3_secret_access_key
    return S3BlobStore(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        prefix=settings.s3_prefix,
    )
