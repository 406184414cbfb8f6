"""Identifiers: 26-character, time-ordered, URL-safe strings (the ULID layout).

48 bits of milliseconds then 80 random bits, in Crockford base32. Ordered by creation time,
so new rows append to indexes, and unguessable, so ids leak nothing about other rows.

Every message makes two ids (the row and its event), so this is on the hot path: the
random bits come from ``os.urandom`` a few kilobytes at a time (one system call per 256
ids instead of one each), the 80 random bits are exactly the last 16 characters, written
ten bits (two characters) at a time from a table of the 1,024 pairs (a third of the time
``base64.b32encode`` took: it is pure Python), and the time prefix is worked out once per
millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 26
_RANDOM_BYTES = 10  # 80 bits: 16 base32 characters
_POOL_IDS = 256
# Every two-character string of the alphabet, indexed by the ten bits they encode.
_PAIRS = tuple(high + low for high in _ALPHABET for low in _ALPHABET)


class _Source(threading.local):
    """Per thread (the event loop and the database writer both make ids), so no lock."""

    def __init__(self) -> None:
        self.pool = b""
        self.offset = 0
        self.millis = -1
        self.prefix = ""


_source = _Source()


def _forget_after_fork() -> None:
    # A forked worker must not hand out the random bytes its parent will also use.
    global _source
    _source = _Source()


os.register_at_fork(after_in_child=_forget_after_fork)


def new_id() -> str:
    source = _source
    millis = time.time_ns() // 1_000_000
    if millis != source.millis:
        source.millis = millis
        source.prefix = _time_prefix(millis)
    if source.offset + _RANDOM_BYTES > len(source.pool):
        source.pool = os.urandom(_RANDOM_BYTES * _POOL_IDS)
        source.offset = 0
    start = source.offset
    source.offset = start + _RANDOM_BYTES
    bits = int.from_bytes(source.pool[start : start + _RANDOM_BYTES])
    pairs = _PAIRS
    return (
        source.prefix
        + pairs[bits >> 70]
        + pairs[(bits >> 60) & 1023]
        + pairs[(bits >> 50) & 1023]
        + pairs[(bits >> 40) & 1023]
        + pairs[(bits >> 30) & 1023]
        + pairs[(bits >> 20) & 1023]
        + pairs[(bits >> 10) & 1023]
        + pairs[bits & 1023]
    )


def _time_prefix(millis: int) -> str:
    chars = []
    for _ in range(ID_LENGTH - 16):
        chars.append(_ALPHABET[millis & 31])
        millis >>= 5
    return "".join(reversed(chars))


def looks_like_id(value: str) -> bool:
    # strip() takes away the alphabet's characters from both ends: only an id leaves nothing
    # (one C call, a fifth of a check per character; every id a call names is checked).
    return len(value) == ID_LENGTH and not value.strip(_ALPHABET)
