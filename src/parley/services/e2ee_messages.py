"""Encrypted conversation messages at the edge (DESIGN §6.1 "Wire").

An encrypted send or edit carries ``ciphertext`` and ``e2ee`` (the envelope:
``{v, alg, sender_device_id, session_id, index}``) instead of ``content``. What needs no
database is checked here — the shapes and the size; the group commit then checks, under
the conversation's row lock, that the conversation is encrypted (``ENCRYPTION_REQUIRED`` /
``NOT_ENCRYPTED``), so a send racing the switch to encryption is judged by the flag it
commits against.

The server never reads inside: it stores the ciphertext untouched (content stays empty, so
search, link previews and notification text see nothing) and serves it back as sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from parley.e2ee import formats
from parley.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class EncryptedBody:
    ciphertext: str
    e2ee: str  # the envelope, as canonical JSON

    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.e2ee)
        return parsed


def check_encrypted(
    content: str, ciphertext: str | None, e2ee: object, *, max_chars: int
) -> EncryptedBody | None:
    """The encrypted body of a send or edit, or None for a plain one. Both ``ciphertext``
    and ``e2ee`` or neither; never with ``content``."""
    if ciphertext is None and e2ee is None:
        return None
    if ciphertext is None:
        raise ValidationFailed.field("ciphertext", "is required with e2ee")
    if e2ee is None:
        raise ValidationFailed.field("e2ee", "is required with ciphertext")
    if content:
        raise ValidationFailed.field("content", "must be empty in an encrypted message")
    try:
        formats.check_ciphertext(ciphertext, max_chars)
        envelope = formats.parse_envelope(e2ee)
    except formats.FormatError as exc:
        raise ValidationFailed.field(exc.field, exc.message) from None
    return EncryptedBody(ciphertext, json.dumps(envelope.to_public(), separators=(",", ":")))
