"""A call and its params read from the text in one pass (``FrameReader``) give exactly what
reading the frame, then its params, gives: the same models for every frame both take, the
same error (code, message, details, ref) for every frame either refuses — odd JSON, lone
surrogates, NUL, huge and non-finite numbers, duplicate keys and nesting included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley.gateway.handlers import FRAMES, METHODS
from parley.gateway.protocol import BadFrame, CallFrame, ReadCall, parse_frame, parse_params

CID = "01JF0000000000000000000002"
MID = "01JF0000000000000000000001"
PARAMS = {name: method.params for name, method in METHODS.items()}


def call(method: str, params: Any, ref: Any = "r1", **extra: Any) -> str:
    return json.dumps({"op": "call", "ref": ref, "method": method, "params": params, **extra})


VALID = {
    "send": call("message.send", {"conversation_id": CID, "content": "hello", "client_msg_id": "c1"}),
    "send, every field": call(
        "message.send",
        {
            "conversation_id": CID,
            "content": "grüße 東京 🎉 \u2028",
            "reply_to_id": MID,
            "attachment_ids": [MID],
            "thread_root_id": MID,
            "thread_broadcast": True,
        },
    ),
    "send, encrypted": call(
        "message.send",
        {"conversation_id": CID, "ciphertext": "AbC", "e2ee": {"v": 1, "n": 12345678901234567890123, "f": 0.5}},
    ),
    "edit": call("message.edit", {"message_id": MID, "content": "again"}),
    "delete": call("message.delete", {"message_id": MID}),
    "reaction": call("reaction.add", {"message_id": MID, "emoji": "👍"}),
    "typing": call("typing.start", {"conversation_id": CID}),
    "read": call("read.mark", {"conversation_id": CID, "seq": 41}),
    "delivered": call("delivered.mark", {"conversation_id": CID, "seq": 0}),
    "reaction removed": call("reaction.remove", {"message_id": MID, "emoji": "🎉"}),
    "numbers of every kind in e2ee": call(
        "message.send",
        {"conversation_id": CID, "ciphertext": "x", "e2ee": {"a": 1, "b": 1.0, "c": -0.0, "d": True, "e": 1e300}},
    ),
    "presence": call("presence.set", {"status": "away"}),
    "ping": '{"op":"ping"}',
    "identify": '{"op":"identify","token":"abc"}',
    "spaces around": ' {"op":"ping"} \n',
    "a key twice (the last one counts)": '{"op":"call","ref":"a","ref":"b","method":"typing.stop",'
    f'"params":{{"conversation_id":"{CID}"}}}}',
}

# Taken by the steps (the service judges what an envelope holds), refused by the one pass's
# JSON reader: read step by step, as before.
TAKEN_STEP_BY_STEP = {
    "lone surrogate deep in e2ee": call("message.send", {"conversation_id": CID, "e2ee": {"k": ["\ud83d"]}}),
}

REFUSED = {
    "not JSON": "{",
    "trailing garbage": '{"op":"ping"}x',
    "a byte-order mark": '\ufeff{"op":"ping"}',
    "a trailing comma": '{"op":"ping",}',
    "not an object": "[1]",
    "unknown op": '{"op":"hello","ref":"r"}',
    "unknown method": call("message.sing", {}),
    "no params": '{"op":"call","ref":"r","method":"message.send"}',
    "params null": call("message.send", None),
    "params not an object": call("message.send", [1]),
    "extra key on the frame": call("typing.start", {"conversation_id": CID}, extra=1),
    "extra key in params": call("typing.start", {"conversation_id": CID, "x": 1}),
    "a bad id": call("typing.start", {"conversation_id": "nope"}),
    "a number as text": call("read.mark", {"conversation_id": CID, "seq": "41"}),
    "a float seq": call("read.mark", {"conversation_id": CID, "seq": 41.0}),
    "a huge seq": call("read.mark", {"conversation_id": CID, "seq": 10**40}),
    "a negative seq": call("read.mark", {"conversation_id": CID, "seq": -1}),
    "NaN seq": f'{{"op":"call","ref":"r","method":"read.mark","params":{{"conversation_id":"{CID}","seq":NaN}}}}',
    "1e400 seq": f'{{"op":"call","ref":"r","method":"read.mark","params":{{"conversation_id":"{CID}","seq":1e400}}}}',
    "NUL in content": call("message.send", {"conversation_id": CID, "content": "a\x00b"}),
    "lone surrogate in content": call("message.send", {"conversation_id": CID, "content": "a\ud800b"}),
    "lone surrogate in the ref": call("typing.start", {"conversation_id": CID}, ref="r\udc00"),
    "empty ref": call("typing.start", {"conversation_id": CID}, ref=""),
    "a ref too long": call("typing.start", {"conversation_id": CID}, ref="r" * 65),
    "a number as ref": call("typing.start", {"conversation_id": CID}, ref=5),
    "a bad status": call("presence.set", {"status": "gone"}),
    "an empty token": '{"op":"identify","token":""}',
    "ping with a key": '{"op":"ping","x":1}',
    "nested ten thousand deep": call("message.send", {"conversation_id": CID, "e2ee": {}}).replace(
        '"e2ee": {}', '"e2ee": ' + "[" * 10_000 + "]" * 10_000
    ),
}


def outcome(read: Any, params_of: Any, text: str) -> tuple[str, Any]:
    """What the connection gets from ``text``: the frame and its params, or the error. Values
    as ``repr`` (1, 1.0 and True differ there, as do 0.0 and -0.0) with the fields set."""
    try:
        frame = read(text)
        params = params_of(frame) if isinstance(frame, CallFrame) else None
    except BadFrame as bad:
        return "error", (bad.error.to_dict(), bad.ref)
    names = ("op", "ref", "method", "token")
    plain = {name: repr(getattr(frame, name)) for name in names if hasattr(frame, name)}
    if params is None:
        return "frame", (plain, None)
    return "frame", (plain, type(params), repr(params), params.model_fields_set)


def step_by_step(text: str) -> tuple[str, Any]:
    return outcome(parse_frame, lambda frame: parse_params(frame, PARAMS), text)


def one_pass(text: str) -> tuple[str, Any]:
    return outcome(FRAMES.frame, FRAMES.params, text)


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_a_valid_frame_reads_the_same_in_one_pass(text: str) -> None:
    expected = step_by_step(text)
    assert expected[0] == "frame"
    assert one_pass(text) == expected


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_frame_gets_the_same_error(text: str) -> None:
    expected = step_by_step(text)
    assert expected[0] == "error"
    assert one_pass(text) == expected


@pytest.mark.parametrize("text", TAKEN_STEP_BY_STEP.values(), ids=TAKEN_STEP_BY_STEP.keys())
def test_a_frame_the_one_pass_refuses_is_read_step_by_step(text: str) -> None:
    assert not isinstance(FRAMES.frame(text), ReadCall)
    assert one_pass(text) == step_by_step(text)


CALLS = [name for name, text in VALID.items() if json.loads(text)["op"] == "call"]


@pytest.mark.parametrize("name", CALLS)
def test_a_valid_call_is_read_with_its_params(name: str) -> None:
    frame = FRAMES.frame(VALID[name])
    assert isinstance(frame, ReadCall)
    assert FRAMES.params(frame) is frame.params


# The least each method takes: every method of the table is read in one pass.
LEAST = {
    "conversation_id": CID,
    "message_id": MID,
    "emoji": "x",
    "seq": 1,
    "status": "online",
}


@pytest.mark.parametrize("method", PARAMS)
def test_every_method_is_read_in_one_pass(method: str) -> None:
    model = PARAMS[method]
    least = {name: LEAST[name] for name, field in model.model_fields.items() if field.is_required()}
    frame = FRAMES.frame(call(method, least))
    assert isinstance(frame, ReadCall), method
    assert type(FRAMES.params(frame)) is model
