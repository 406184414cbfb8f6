"""JSON text as every server frame writes it, and objects spliced from parts written before.

A frame is compact JSON with non-ASCII characters as they are (:func:`dumps`). A part two
frames carry is written once and spliced into both: a new message is in its
``message.created`` event and in its sender's ``ack``, and it was encoded twice, once
for each, on the event loop. :func:`object_text` writes exactly
what :func:`dumps` writes for the whole object — the wire does not change, only who encodes
what (``tests/unit/gateway/test_gateway_frames.py`` holds the two side by side).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring  # what dumps writes for a str (ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class JsonText:
    """A JSON value already written by :func:`dumps`: a frame splices ``text`` as it is.

    Not a ``str``, so that it never passes for a string value: a frame takes it only as its
    whole ``data``, and :func:`dumps` refuses it anywhere inside a value."""

    text: str


def _stray(value: object) -> str:
    # Timestamps are already strings; this only guards a stray Decimal or id.
    if isinstance(value, JsonText):
        raise TypeError("JsonText is spliced as a frame's whole data, never encoded inside a value")
    return str(value)


# Built once: json.dumps with any option builds a new encoder per call (about a third of the
# time of encoding a frame as small as an ack).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_stray)


def dumps(value: object) -> str:
    """What ``json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)``
    writes; a :class:`JsonText` inside ``value`` raises ``TypeError``."""
    return _ENCODER.encode(value)


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
