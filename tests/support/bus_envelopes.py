"""Envelopes made up for the bus tests (the contract suite and the Redis bus's own):
numbered, so a test can say which arrived and in what order."""

from __future__ import annotations

from parley.bus import Envelope


def envelope(
    number: int,
    *,
    conversation: str | None = "c1",
    users: tuple[str, ...] = (),
    id: str | None = None,
) -> Envelope:
    return Envelope(
        id=id or f"e{number}",
        type="message.created",
        frame=f'{{"op":"event","n":{number}}}',
        conversation_id=conversation,
        user_ids=users,
    )
