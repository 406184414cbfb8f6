"""JSON text as every server frame writes it, and objects spliced from parts written before.

A frame is compact JSON with non-ASCII characters as they are (:func:`dumps`). A part two
frames carry is written once and spliced into both: a new message is in its
``message.created`` event and in its sender's ``ack``, and it was encoded twice, once
for each, on the event loop. :func:`object_text` writes exactly
what :func:`dumps` writes for the whole object — the wire does not change, only who encodes
what (``tests/unit/gateway/test_gateway_frames.py`` holds the two side by side).

Encoding is orjson's (a fifth of the standard library's time per frame), with the standard
library's as the fallback for what orjson refuses: a lone surrogate, an integer beyond 64
bits, a key that is not a string, nesting deeper than 255. So a value is written exactly as
before except for three things no frame holds today: a float below 1e-4 in magnitude (orjson
writes ``0.00001`` and ``1e-7`` where Python writes ``1e-05`` and ``1e-07``: the same number to
any JSON reader), a non-finite float (``null``; Python's ``NaN`` is not JSON), and a plain
``Enum`` or ``Flag`` member (its value; Python's ``default=str`` wrote ``"Kind.A"``).
``tests/unit/test_json_text.py`` holds the two side by side. Reading stays the standard
library's: orjson reads an integer beyond 64 bits as a float, and a client's huge number must
reach validation as the number it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring  # what dumps writes for a str (ensure_ascii=False)

import orjson


@dataclass(frozen=True, slots=True)
class JsonText:
    """A JSON value already written by :func:`dumps`: a frame splices ``text`` as it is.

    Not a ``str``, so that it never passes for a string value: a frame takes it only as its
    whole ``data``, and :func:`dumps` refuses it anywhere inside a value."""

    text: str


def _stray(value: object) -> object:
    # Timestamps are already strings; this only guards a stray Decimal or id.
    if isinstance(value, JsonText):
        raise TypeError("JsonText is spliced as a frame's whole data, never encoded inside a value")
    # What the standard library writes natively and orjson hands here (subclasses of these).
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


# The fallback, built once: json.dumps with any option builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_stray)
# A datetime or a dataclass goes to ``default`` (``str``), as it does in the standard library.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: object) -> str:
    """What ``json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)``
    writes, but for the three differences in the module docstring; a :class:`JsonText` inside
    ``value`` raises ``TypeError``."""
    try:
        return orjson.dumps(value, default=_stray, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:  # rare (see above): encoded again, whole, the stdlib's way
        return _ENCODER.encode(value)


def dumps_utf8(value: object) -> bytes:
    """``dumps(value)`` encoded as UTF-8 (what orjson writes, without a decode and an encode)."""
    try:
        return orjson.dumps(value, default=_stray, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _ENCODER.encode(value).encode()


def object_text(fields: Mapping[str, object], written: Mapping[str, str]) -> JsonText:
    """The object ``fields`` as ``dumps(fields)`` writes it, in the same key order, but the
    value of each key in ``written`` taken from there (its JSON text) instead of encoded."""
    parts = [
        encode_basestring(key) + ":" + (written[key] if key in written else _value(value))
        for key, value in fields.items()
    ]
    return JsonText("{" + ",".join(parts) + "}")


def _value(value: object) -> str:
    # The scalars of a frame's top level (ids, seqs, flags) without a call to the encoder,
    # written as it writes them (exact types only: an enum member goes to the encoder).
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return dumps(value)
