"""The attachment errors, each a narrower case of a ``parley.errors`` class (same status,
its own stable code):

    ValidationFailed       400
    ├── EmptyFile              EMPTY_FILE
    ├── ImageUnreadable        IMAGE_UNREADABLE (corrupt, truncated, not what it claims)
    └── InvalidAttachment      INVALID_ATTACHMENT (unknown id, or another user's upload)
    Forbidden              403
    ├── UrlExpired             URL_EXPIRED
    └── UrlSignatureInvalid    URL_SIGNATURE_INVALID
    Conflict               409
    └── AttachmentAlreadyUsed  ATTACHMENT_ALREADY_USED
    PayloadTooLarge        413 PAYLOAD_TOO_LARGE (bytes over the limit for the file's kind)
    └── ImageTooLarge          IMAGE_TOO_LARGE (too many pixels: decompression bombs too)
    UnsupportedMediaType   415 UNSUPPORTED_MEDIA_TYPE (type not accepted)
    └── MediaTypeMismatch      MEDIA_TYPE_MISMATCH (declared type contradicts the bytes)
    RangeNotSatisfiable    416 RANGE_NOT_SATISFIABLE
"""

from __future__ import annotations

from parley.errors import (
    Conflict,
    Forbidden,
    ParleyError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)


class EmptyFile(ValidationFailed):
    code = "EMPTY_FILE"
    default_message = "The file is empty"


class ImageUnreadable(ValidationFailed):
    code = "IMAGE_UNREADABLE"
    default_message = "The image is corrupt or truncated"


class InvalidAttachment(ValidationFailed):
    code = "INVALID_ATTACHMENT"
    default_message = "attachment_ids: no such upload of yours"


class UrlExpired(Forbidden):
    code = "URL_EXPIRED"
    default_message = "This link has expired; reload the message for a fresh one"


class UrlSignatureInvalid(Forbidden):
    code = "URL_SIGNATURE_INVALID"
    default_message = "This link is not valid"


class AttachmentAlreadyUsed(Conflict):
    code = "ATTACHMENT_ALREADY_USED"
    default_message = "This upload is already attached to a message; upload it again"


class ImageTooLarge(PayloadTooLarge):
    code = "IMAGE_TOO_LARGE"
    default_message = "The image has too many pixels"


class MediaTypeMismatch(UnsupportedMediaType):
    code = "MEDIA_TYPE_MISMATCH"
    default_message = "The file's content does not match its declared type"


class RangeNotSatisfiable(ParleyError):
    status = 416
    code = "RANGE_NOT_SATISFIABLE"
    default_message = "The requested range is outside the file"
