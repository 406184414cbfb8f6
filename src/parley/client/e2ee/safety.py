"""Safety numbers (DESIGN §6.1 "Verification"), in the manner of Signal's: each user's
identity material is hashed 5,200 times with SHA-512 into 30 digits; the pair's number
is both halves, lower user id first, so both sides compute the same 60 digits.

A user's identity material is the sorted list of their devices' Ed25519 signing keys (each
device's X25519 identity key is signed by its signing key), so a new, removed or changed
device changes the number.
"""

from __future__ import annotations

from parley.client.e2ee import primitives as p

LABEL = b"parley-e2ee-v1 safety number\x00"
ITERATIONS = 5200


def fingerprint(user_id: str, signing_keys: list[bytes]) -> str:
    material = b"".join(sorted(signing_keys))
    digest = LABEL + material + user_id.encode("ascii")
    for _ in range(ITERATIONS):
        digest = p.sha512(digest + material)
    return "".join(f"{int.from_bytes(digest[i:i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def safety_number(user_a: str, keys_a: list[bytes], user_b: str, keys_b: list[bytes]) -> str:
    halves = sorted([(user_a, fingerprint(user_a, keys_a)), (user_b, fingerprint(user_b, keys_b))])
    digits = halves[0][1] + halves[1][1]
    return " ".join(digits[i : i + 5] for i in range(0, 60, 5))
