"""The gateway's JSON (``parley.wire.json_text``): orjson's, with the standard library's as the
fallback, so every value is written exactly as ``json`` would write it, floats aside."""

from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from parley.wire.json_text import JsonText, dumps, dumps_utf8


def stdlib(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class Pair(NamedTuple):
    a: int
    b: int


class Real(float):
    pass


@dataclass(frozen=True)
class Point:
    x: int


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


EVERY_CHARACTER_CLASS = "".join(chr(code) for code in range(0x80)) + "\u2028\u2029\ufeff\u00e9東😀\U0010ffff"
VALUES: dict[str, object] = {
    "a frame": {"op": "event", "type": "message.created", "data": {"seq": 7, "ok": True, "none": None}},
    "every ASCII character and more": {"text": EVERY_CHARACTER_CLASS, EVERY_CHARACTER_CLASS: [EVERY_CHARACTER_CLASS]},
    "a lone surrogate (orjson refuses it)": {"text": "a\ud800b"},
    "integers beyond 64 bits (orjson refuses them)": [2**64, -(2**63) - 1, 10**40, 2**63 - 1, -(2**63)],
    "keys that are not strings (orjson refuses them)": {1: "one", False: "f", None: "n", 2.5: "x"},
    "a datetime (written by str, as default=str did)": {"at": datetime(2026, 12, 7, 9, 30, tzinfo=UTC)},
    "a dataclass (written by str)": {"p": Point(3)},
    "a tuple and nesting": {"t": (1, [2, {"x": ()}]), "e": {}},
    "a named tuple and a float subclass (orjson hands them to default)": [Pair(1, 2), Real(1.5)],
    "nesting deeper than orjson goes (255)": _nested(300),
    "a bare string": "plain",
    "zero and negatives": [0, -1, False, True],
}


@pytest.mark.parametrize("name", list(VALUES))
def test_dumps_writes_what_the_standard_library_writes(name: str) -> None:
    assert dumps(VALUES[name]) == stdlib(VALUES[name])


def test_written_text_inside_a_value_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"data": JsonText("{}")})


def _floats() -> list[float]:
    rng = random.Random(23)
    values = [0.0, -0.0, 0.1, 1.0, 1.5, 1e-4, 1e-5, 2.5e-5, 1e15, 1e16, 1e22, 5e-324, 1.7976931348623157e308]
    values += [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(20_000)]
    values += [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(20_000)]
    return [value for value in values if math.isfinite(value)]


def test_a_float_reads_back_as_the_same_number_and_is_written_as_python_does_from_1e_minus_4_up() -> None:
    for value in _floats():
        text = dumps({"f": value})
        assert json.loads(text)["f"] == value
        if abs(value) >= 1e-4 or value == 0:  # written as Python writes them
            assert text == stdlib({"f": value})


def test_a_non_finite_float_is_written_as_null_which_is_json() -> None:
    assert dumps([math.nan, math.inf, -math.inf]) == "[null,null,null]"


@pytest.mark.parametrize("name", [name for name in VALUES if "surrogate" not in name])
def test_dumps_utf8_is_dumps_encoded(name: str) -> None:
    assert dumps_utf8(VALUES[name]) == dumps(VALUES[name]).encode()


def test_dumps_utf8_refuses_a_lone_surrogate_as_encoding_the_text_would() -> None:
    with pytest.raises(UnicodeEncodeError):
        dumps_utf8(VALUES["a lone surrogate (orjson refuses it)"])
