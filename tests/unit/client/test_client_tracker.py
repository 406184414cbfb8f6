"""The SDK's resume bookkeeping on its own: gaps, out-of-order arrival, duplicates, stale
events after a fill, held events, and conversations joined, left or found at reconnect."""

from __future__ import annotations

from typing import Any

from parley.client.tracker import RealtimeEvent, Tracker

ME = "me"


def record(number: int, seq: int, version: int | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m{number}",
        "seq": seq,
        "version_seq": version or seq,
        "deleted": False,
        "sender_id": "other",
        "kind": "text",
        **extra,
    }


def created(number: int, seq: int, conversation: str = "c") -> RealtimeEvent:
    return RealtimeEvent(
        "message.created",
        {"conversation_id": conversation, "seq": seq, "message": record(number, seq)},
    )


def reaction(number: int, seq: int) -> RealtimeEvent:
    return RealtimeEvent(
        "reaction.added",
        {"conversation_id": "c", "seq": seq, "message_id": f"m{number}", "emoji": "👍"},
    )


def ready_tracker(last_seq: int = 0) -> Tracker:
    tracker = Tracker(ME)
    outcome = tracker.on_ready([{"id": "c", "last_seq": last_seq}])
    assert outcome.deliver == [] and outcome.fill == []
    return tracker


def seqs(events: list[RealtimeEvent]) -> list[tuple[str, int]]:
    return [(e.type, e.data["seq"]) for e in events]


def test_in_order_events_flow_and_duplicates_drop() -> None:
    tracker = ready_tracker()
    assert seqs(tracker.on_event(created(1, 1)).deliver) == [("message.created", 1)]
    assert seqs(tracker.on_event(created(2, 2)).deliver) == [("message.created", 2)]
    assert tracker.on_event(created(2, 2)).deliver == []  # the same event twice
    assert tracker.position("c") == 2


def test_a_gap_holds_events_until_the_fill_and_dedupes_after() -> None:
    tracker = ready_tracker()
    tracker.on_event(created(1, 1))
    gap = tracker.on_event(created(4, 4))  # 2 and 3 missing
    assert gap.deliver == [] and gap.fill == ["c"]
    assert tracker.fill_from("c") == 1
    # While filling, later events of the conversation wait; typing does not.
    assert tracker.on_event(created(5, 5)).deliver == []
    typing = RealtimeEvent("typing.started", {"conversation_id": "c", "user_id": "x"})
    assert tracker.on_event(typing).deliver == [typing]
    done = tracker.fill_done("c", [record(2, 2), record(3, 3), record(4, 4)], last_seq=4)
    assert seqs(done.deliver) == [
        ("message.created", 2),
        ("message.created", 3),
        ("message.created", 4),
        ("message.created", 5),
    ]
    assert [e.replayed for e in done.deliver] == [True, True, True, False]
    assert tracker.position("c") == 5 and done.fill == []
    # The live copy of 3, arriving late, is a duplicate.
    assert tracker.on_event(created(3, 3)).deliver == []


def test_out_of_order_writers_resolve_through_one_fill() -> None:
    tracker = ready_tracker(10)
    assert tracker.on_event(created(12, 12)).fill == ["c"]
    # The fill finds 11 and 12 committed (seq order is commit order).
    done = tracker.fill_done("c", [record(11, 11), record(12, 12)], last_seq=12)
    assert seqs(done.deliver) == [("message.created", 11), ("message.created", 12)]
    assert tracker.on_event(created(11, 11)).deliver == []


def test_a_stale_change_after_a_newer_fill_is_dropped() -> None:
    tracker = ready_tracker()
    tracker.on_event(created(1, 1))
    assert tracker.on_event(reaction(1, 3)).fill == ["c"]  # seq 2 went missing
    # seq 2 was an edit; 3 the reaction; the fill carries the message at version 3.
    done = tracker.fill_done("c", [record(1, 1, version=3, content="edited")], last_seq=3)
    assert seqs(done.deliver) == [("message.updated", 3)]
    assert done.deliver[0].replayed
    # A late live copy of the edit (seq 2) is older than what the app has: dropped.
    edit = RealtimeEvent(
        "message.updated", {"conversation_id": "c", "seq": 2, "message": record(1, 1, 2)}
    )
    assert tracker.on_event(edit).deliver == []


def test_fills_name_deletes_and_unknown_messages() -> None:
    tracker = ready_tracker(5)
    tracker.on_event(created(6, 6))
    assert tracker.on_event(created(9, 9)).fill == ["c"]
    done = tracker.fill_done(
        "c",
        [record(6, 6, version=7, deleted=True), record(8, 8), record(9, 9)],
        last_seq=9,
    )
    assert seqs(done.deliver) == [
        ("message.deleted", 7),
        ("message.created", 8),
        ("message.created", 9),
    ]


def test_reconnect_fills_what_moved_and_announces_new_conversations() -> None:
    tracker = ready_tracker(3)
    outcome = tracker.on_ready(
        [
            {"id": "c", "last_seq": 7},
            {"id": "new", "last_seq": 2, "type": "group", "name": "Joined while away"},
        ]
    )
    assert outcome.fill == ["c"] and tracker.is_filling("c")
    assert [(e.type, e.conversation_id, e.replayed) for e in outcome.deliver] == [
        ("conversation.created", "new", True)
    ]
    assert tracker.position("new") == 2
    # A conversation missing from ready was left or deleted meanwhile.
    tracker.on_ready([{"id": "new", "last_seq": 2}])
    assert tracker.position("c") is None


def test_first_ready_can_resume_from_saved_positions() -> None:
    tracker = Tracker(ME, positions={"c": 4})
    outcome = tracker.on_ready([{"id": "c", "last_seq": 9}, {"id": "d", "last_seq": 1}])
    assert outcome.fill == ["c"] and outcome.deliver == []
    assert tracker.fill_from("c") == 4 and tracker.position("d") == 1


def test_conversations_joined_and_left_live() -> None:
    tracker = ready_tracker()
    # Added to a group: the system message is the first thing we see of it.
    first = RealtimeEvent(
        "message.created",
        {"conversation_id": "g", "seq": 7, "message": record(70, 7, kind="system")},
    )
    assert tracker.on_event(first).deliver == [first]
    assert tracker.position("g") == 7
    created_dm = RealtimeEvent("conversation.created", {"conversation_id": "dm", "seq": 0})
    assert tracker.on_event(created_dm).deliver == [created_dm]
    assert seqs(tracker.on_event(created(1, 1, "dm")).deliver) == [("message.created", 1)]
    removed = RealtimeEvent("member.removed", {"conversation_id": "g", "seq": 8, "user_ids": [ME]})
    assert tracker.on_event(removed).deliver == [removed]
    assert tracker.position("g") is None
    deleted = RealtimeEvent("conversation.deleted", {"conversation_id": "dm"})
    assert tracker.on_event(deleted).deliver == [deleted] and tracker.position("dm") is None


def test_receipts_and_member_events_do_not_move_the_position() -> None:
    tracker = ready_tracker(5)
    receipt = RealtimeEvent("receipt.read", {"conversation_id": "c", "user_id": "x", "seq": 5})
    updated = RealtimeEvent("member.updated", {"conversation_id": "c", "seq": 5})
    assert tracker.on_event(receipt).deliver == [receipt]
    assert tracker.on_event(updated).deliver == [updated]
    assert tracker.position("c") == 5
