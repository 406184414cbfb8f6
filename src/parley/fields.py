"""What untrusted text, ids and numbers may be, checked where they enter (DESIGN §3).

One place for every edge: REST bodies (``api.deps.RequestModel``), path and query
parameters (``api.deps.check_request_text`` and the ``Id`` / ``Seq`` annotations) and socket
params (``gateway.protocol``). Whatever passes here can be stored by SQLite and PostgreSQL
alike and encoded as UTF-8:

- **text** holds no NUL (PostgreSQL refuses it in text columns) and no unpaired UTF-16
  surrogate (``"\\ud800"`` — JSON can spell one, UTF-8 cannot encode it);
- **ids** have the shape :func:`parley.ids.new_id` gives every row (26 Crockford base32
  characters), so a malformed one is refused before any query: 404 in a path (it names
  nothing), ``VALIDATION_ERROR`` naming the field anywhere else;
- **integers** that reach the database fit its 64-bit integers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from parley.e2ee.formats import DEVICE_ID_PATTERN
from parley.ids import looks_like_id

# The largest value of a 64-bit signed integer column (SQLite INTEGER, PostgreSQL BIGINT):
# a larger seq could never name anything, and passing one to the driver overflows.
MAX_INT64 = 2**63 - 1
# The pydantic error types raised here; ``api.errors`` turns a path ``id`` error into 404.
BAD_TEXT = "text_characters"
BAD_ID = "id_shape"
BAD_TEXT_MESSAGE = "must not contain NUL characters or unpaired surrogates"
BAD_ID_MESSAGE = "is not an id"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return BAD_TEXT_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # only an unpaired surrogate fails to encode
            return BAD_TEXT_MESSAGE
    return None


def check_text(value: str) -> str:
    if text_problem(value) is not None:
        raise PydanticCustomError(BAD_TEXT, BAD_TEXT_MESSAGE)
    return value


def check_texts(value: object) -> object:
    """Every string in ``value`` (a string, or a list / tuple of them) is storable text."""
    if isinstance(value, str):
        return check_text(value)
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str):
                check_text(item)
    return value


def check_id(value: str) -> str:
    if not looks_like_id(value):
        raise PydanticCustomError(BAD_ID, BAD_ID_MESSAGE)
    return value


def first_bad_text(values: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first (name, value) pair whose value is not storable text."""
    for name, value in values:
        if text_problem(value) is not None:
            return name
    return None


def check_device_id(value: str) -> str:
    """An E2EE device id (``parley.e2ee.formats``): refused like a malformed id."""
    if not DEVICE_ID_PATTERN.fullmatch(value):
        raise PydanticCustomError(BAD_ID, "is not a device id")
    return value


Id = Annotated[str, AfterValidator(check_id)]
DeviceId = Annotated[str, AfterValidator(check_device_id)]
Seq = Annotated[int, Field(ge=0, le=MAX_INT64)]
