"""Ids: the ULID layout, 48 bits of milliseconds then 80 random bits, in Crockford base32."""

from __future__ import annotations

import base64
import os
import time

from parley import ids

_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def _decode(value: str) -> int:
    number = 0
    for char in value:
        number = number * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return number


def test_an_id_is_26_characters_of_the_alphabet_and_says_when_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000
    assert all(ids.looks_like_id(value) for value in made)
    assert all(before <= _decode(value[:10]) <= after for value in made)
    assert len(set(made)) == len(made)


def test_the_random_part_is_the_base32_of_eighty_random_bits(monkeypatch) -> None:
    # The pool of random bytes replaced by known bytes: the last 16 characters must be
    # exactly what base64's own base32 (in Crockford's alphabet) writes for each 10 bytes.
    pool = os.urandom(10 * 300)
    monkeypatch.setattr(ids.os, "urandom", lambda n: pool[:n])
    ids._forget_after_fork()
    for index in range(256):
        chunk = pool[index * 10 : index * 10 + 10]
        expected = base64.b32encode(chunk).translate(_CROCKFORD).decode()
        assert ids.new_id()[10:] == expected
    ids._forget_after_fork()


def test_every_character_appears_in_every_random_position() -> None:
    made = [ids.new_id() for _ in range(20_000)]
    for position in range(10, 26):
        assert {value[position] for value in made} == set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_looks_like_id_takes_only_26_characters_of_the_alphabet() -> None:
    good = ids.new_id()
    assert ids.looks_like_id(good)
    for bad in [
        "",
        good[:-1],
        good + "0",
        good.lower(),
        good[:-1] + "I",
        good[:-1] + "U",
        good[:12] + "\x00" + good[13:],
        good[:12] + " " + good[13:],
        "-" + good[1:],
        good[:-1] + "\ud800",
        "０" * 26,
    ]:
        assert not ids.looks_like_id(bad), bad
