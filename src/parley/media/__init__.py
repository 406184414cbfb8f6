"""Media (DESIGN §2 "media/"): blob storage and the byte-level work on uploaded files.

- ``blobstore``: the ``BlobStore`` contract; ``local`` (a directory, the default) and ``s3``
  (any S3-compatible service: AWS, MinIO, ...) implement it. Only ``s3`` imports boto3.
- ``sniff``: what a file is, decided from its bytes (magic numbers), never from the client.
- ``names``: safe display and download names.
- ``images``: decoding with a pixel limit, orientation, metadata stripping, thumbnails.

Nothing here knows about HTTP, users or the database: ``services.uploads`` and
``services.attachments`` put these pieces together.
"""
