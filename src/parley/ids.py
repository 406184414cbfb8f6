"""Identifiers: 26-character, time-ordered, URL-safe strings (the ULID layout).

48 bits of milliseconds then 80 random bits, in Crockford base32. Ordered by creation time,
so new rows append to indexes, and unguessable, so ids leak nothing about other rows.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 26


def new_id() -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def looks_like_id(value: str) -> bool:
    return len(value) == ID_LENGTH and all(c in _ALPHABET for c in value)
