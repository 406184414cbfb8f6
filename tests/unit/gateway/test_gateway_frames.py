"""Frames spliced from a message written once are, byte for byte, the frames the plain
encoder writes: the ``message.created`` event of a send and its sender's ``ack``, for
messages of every shape (text that needs escaping, encrypted, replies, attachments)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from parley.gateway.protocol import AckFrame, EventFrame, ack_frame, encode, event_frame
from parley.gateway.router import envelope_for
from parley.services.message_records import Message, ReplyPreview, ThreadSummary
from parley.services.message_sending import created_event
from parley.wire.json_text import JsonText, object_text

WHEN = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "id": "01JF0000000000000000000001",
        "conversation_id": "01JF0000000000000000000002",
        "seq": 41,
        "version_seq": 41,
        "sender_id": "01JF0000000000000000000003",
        "kind": "text",
        "content": "hello",
        "client_msg_id": "c.1",
        "reply_to_id": None,
        "mentions": (),
        "system_event": None,
        "created_at": WHEN,
        "edited_at": None,
        "deleted_at": None,
    }
    return Message(**(fields | changes))


MESSAGES = {
    "plain": message(),
    "escaped": message(content='quotes " and \\ backslash, tab\t, newline\n, \x01 and \u2028'),
    "unicode": message(content="grüße, 東京, emoji 🎉 and ZWJ 👩‍💻", client_msg_id="ü.😀"),
    "mentions": message(content="@ada @bob", mentions=("01JF0000000000000000000004", "01JF0000000000000000000005")),
    "reply in a thread": message(
        reply_to_id="01JF0000000000000000000006",
        reply_to=ReplyPreview("01JF0000000000000000000006", None, "earlier \"one\"", deleted=False),
        thread_root_id="01JF0000000000000000000007",
        thread_broadcast=True,
        thread=ThreadSummary(3, WHEN, ("01JF0000000000000000000003",)),
    ),
    "encrypted": message(
        content="",
        ciphertext="AbC-_" * 20,
        e2ee={"v": 1, "alg": "x", "sender_device_id": "d", "session_id": "s", "index": 7},
    ),
    "attachments": message(
        attachments=({"id": "a", "filename": "ré sumé.pdf", "size": 12, "url": "/f?x=1&y=2"},),
        link_preview={"url": "https://example.org/?q=ä", "title": None},
    ),
    "no client id": message(client_msg_id=None, sender_id=None, seq=1, version_seq=1),
}


@pytest.mark.parametrize("shape", list(MESSAGES))
def test_the_created_event_frame_is_the_plain_encoding(shape: str) -> None:
    m = MESSAGES[shape]
    event = created_event(m)
    assert event.data_text is not None
    plain = encode(EventFrame(op="event", type=event.type, data=event.data))
    assert envelope_for(event).frame == plain
    assert json.loads(plain)["data"]["message"]["content"] == m.content


@pytest.mark.parametrize("shape", list(MESSAGES))
@pytest.mark.parametrize("created", [True, False])
@pytest.mark.parametrize("ref", ["7", 'r"ef\\ü'])
def test_the_send_ack_is_the_plain_encoding(shape: str, created: bool, ref: str) -> None:
    m = MESSAGES[shape]
    fields = {"message": m.to_public(), "created": created}
    spliced = ack_frame(ref, object_text(fields, {"message": m.public_text()}))
    assert spliced == encode(AckFrame(op="ack", ref=ref, data=fields))
    assert json.loads(spliced)["data"]["created"] is created


def test_the_message_is_written_once_and_shared() -> None:
    m = message(content="once")
    event = created_event(m)
    assert event.data_text is not None
    assert m.public_text() is m.public_text()
    assert m.public_text() in event.data_text.text


def test_other_values_are_encoded_as_dumps_would() -> None:
    fields = {"s": "ä\"", "n": 3, "f": 1.5, "b": False, "none": None, "list": [1, "x"], "d": {"k": []}}
    assert object_text(fields, {}).text == json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    assert event_frame("typing.started", JsonText('{"a":1}')) == encode(
        EventFrame(op="event", type="typing.started", data={"a": 1})
    )


def test_written_text_is_never_encoded_as_a_string() -> None:
    with pytest.raises(TypeError):
        ack_frame("1", {"message": JsonText("{}")})
