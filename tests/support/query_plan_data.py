"""A populated chat database for query-plan checks: users, direct and group conversations,
messages (replies, edits, tombstones, system messages, client ids), reactions, read marks,
attachments, sessions with refresh tokens, contacts and blocks.

Rows go straight into the tables (executemany), so a database of 50,000 messages fills in
seconds; the search triggers and indexes are kept up as in production. ``analyze`` gives
the planners statistics. Parley itself never runs ANALYZE, so a SQLite database in
production has none: the checks look at SQLite plans both without and with them.

The shape is that of a team, not of a benchmark: a few busy conversations and a long tail,
and one "heavy" user who is in the busiest conversation, a quarter of the groups and a
quarter of the direct conversations — not in everything, so IN lists of their conversations
pick a part of each table, as they do in production.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert

from parley.ids import new_id
from parley.store.db import Database
from parley.store.tables.accounts import refresh_tokens, sessions, users
from parley.store.tables.contacts import blocks, contacts
from parley.store.tables.conversations import conversations, members
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages, reactions

WORDS = (
    "ship review deploy lunch meeting notes ticket merge build release design fix bug call "
    "café naïve 東京 report budget plan sprint retro demo launch incident"
).split()
INSERT_CHUNK = 2_000
START = datetime(2026, 1, 1, tzinfo=UTC)
# The heavy user keeps up: this many messages behind in each conversation.
HEAVY_USER_BEHIND = 2


@dataclass(frozen=True, slots=True)
class Scale:
    users: int = 200
    groups: int = 40
    directs: int = 60
    messages: int = 50_000
    sessions_per_user: int = 5
    attachment_share: float = 0.05  # of messages carrying a file


@dataclass
class Dataset:
    """What the checks need to name: ids that exist, with realistic shapes."""

    user_ids: list[str] = field(default_factory=list)
    conversation_ids: list[str] = field(default_factory=list)
    direct_ids: list[str] = field(default_factory=list)
    members_of: dict[str, list[str]] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)  # conversations.last_seq
    message_ids: dict[str, list[str]] = field(default_factory=dict)  # by conversation, seq order
    client_ids: list[tuple[str, str, str]] = field(default_factory=list)  # (conv, sender, id)
    session_ids: dict[str, list[str]] = field(default_factory=dict)  # by user; [0] revoked
    unclaimed: dict[str, str] = field(default_factory=dict)  # user -> an upload not sent yet
    busiest: str = ""  # the conversation with the most messages

    @property
    def heavy_user(self) -> str:
        return self.user_ids[0]

    def conversations_of(self, user_id: str) -> list[str]:
        return [c for c, people in self.members_of.items() if user_id in people]


class _Rows:
    """Rows per table, inserted in dependency order."""

    def __init__(self) -> None:
        self.by_table: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.by_table.setdefault(table.name, []).append(row)


async def populate(
    db: Database, scale: Scale = Scale(), *, seed: int = 7, statistics: bool = True
) -> Dataset:
    """Fill an empty, migrated database; returns the ids the checks use."""
    rng = random.Random(seed)
    data = Dataset()
    rows = _Rows()
    _add_users(rows, data, scale)
    _add_conversations(rows, data, scale, rng)
    _add_messages(rows, data, scale, rng)
    _add_reactions_and_attachments(rows, data, scale, rng)
    _add_sessions(rows, data, scale)
    _add_contacts(rows, data, rng)
    ordered = (users, sessions, refresh_tokens, conversations, members, messages, reactions,
               attachments, contacts, blocks)  # fmt: skip
    async with db.transaction() as conn:
        for table in ordered:
            batch = rows.by_table.get(table.name, [])
            for start in range(0, len(batch), INSERT_CHUNK):
                await conn.execute(insert(table), batch[start : start + INSERT_CHUNK])
    if statistics:
        await analyze(db)
    return data


async def analyze(db: Database) -> None:
    """Planner statistics for every table (what autovacuum gives PostgreSQL)."""
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()


def _when(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def _add_users(rows: _Rows, data: Dataset, scale: Scale) -> None:
    for n in range(scale.users):
        user_id = new_id()
        name = f"user{n:04d}"
        data.user_ids.append(user_id)
        rows.add(users, {
            "id": user_id, "username": name, "username_key": name,
            "display_name": f"User {n}", "password_hash": "x", "is_admin": n == 0,
            "created_at": _when(n), "updated_at": _when(n), "last_seen_at": None,
            "deactivated_at": None,
        })  # fmt: skip


def _people(data: Dataset, scale: Scale, n: int, rng: random.Random) -> list[str]:
    """Members of conversation ``n`` (groups first, then direct pairs), heavy user first
    where they are in it."""
    heavy, others = data.user_ids[0], data.user_ids[1:]
    if n < scale.groups:
        size = rng.randint(5, min(120, len(data.user_ids)))
        picked = rng.sample(others, size - 1)
        return [heavy, *picked] if n % 4 == 0 else picked
    first = heavy if n < scale.groups + scale.directs // 4 else rng.choice(others)
    return [first, rng.choice([u for u in others if u != first])]


def _add_conversations(rows: _Rows, data: Dataset, scale: Scale, rng: random.Random) -> None:
    pairs: set[str] = set()
    for n in range(scale.groups + scale.directs):
        direct = n >= scale.groups
        people = _people(data, scale, n, rng)
        key = ":".join(sorted(people)) if direct else None
        while key is not None and key in pairs:
            people = _people(data, scale, n, rng)
            key = ":".join(sorted(people))
        if key is not None:
            pairs.add(key)
        conversation_id = new_id()
        data.conversation_ids.append(conversation_id)
        data.members_of[conversation_id] = people
        if direct:
            data.direct_ids.append(conversation_id)
        rows.add(conversations, {
            "id": conversation_id, "type": "direct" if direct else "group",
            "name": None if direct else f"group {n}", "slug": None if direct else f"group-{n}",
            "topic": "", "direct_key": key, "created_by": people[0], "created_at": _when(n),
            "updated_at": _when(n), "last_seq": 0, "last_activity_at": _when(n),
        })  # fmt: skip


def _message_counts(data: Dataset, scale: Scale, rng: random.Random) -> dict[str, int]:
    """A few busy conversations and a long tail; the busiest is the heavy user's first
    group (people are in their busiest channel)."""
    weights = sorted((rng.paretovariate(1.2) for _ in data.conversation_ids), reverse=True)
    total = sum(weights)
    data.busiest = data.conversation_ids[0]
    return {
        c: max(3, int(scale.messages * w / total))
        for c, w in zip(data.conversation_ids, weights, strict=True)
    }


def _add_messages(rows: _Rows, data: Dataset, scale: Scale, rng: random.Random) -> None:
    counts = _message_counts(data, scale, rng)
    minute = 0.0
    for conversation_id, count in counts.items():
        people = data.members_of[conversation_id]
        ids: list[str] = []
        version = count
        for seq in range(1, count + 1):
            minute += 0.5
            message_id = new_id()
            ids.append(message_id)
            system = seq == 1 and conversation_id not in data.direct_ids
            sender = None if system else rng.choice(people)
            client_msg_id = f"c-{seq}" if sender and rng.random() < 0.7 else None
            if client_msg_id and sender:
                data.client_ids.append((conversation_id, sender, client_msg_id))
            deleted = not system and rng.random() < 0.02
            edited = not system and not deleted and rng.random() < 0.05
            if deleted or edited:  # a later change takes the next seq as version_seq
                version += 1
            reply = rng.choice(ids[:-1]) if len(ids) > 1 and rng.random() < 0.1 else None
            rows.add(messages, {
                "id": message_id, "conversation_id": conversation_id, "seq": seq,
                "version_seq": version if deleted or edited else seq, "sender_id": sender,
                "kind": "system" if system else "text",
                "content": "" if system or deleted else " ".join(rng.choices(WORDS, k=6)),
                "client_msg_id": client_msg_id, "reply_to_id": reply, "mentions": "[]",
                "system_event": json.dumps({"type": "conversation.created"}) if system else None,
                "created_at": _when(minute), "edited_at": _when(minute + 1) if edited else None,
                "deleted_at": _when(minute + 1) if deleted else None,
            })  # fmt: skip
        data.message_ids[conversation_id] = ids
        data.last_seq[conversation_id] = version
    _add_members(rows, data, counts, rng)
    for row in rows.by_table["conversations"]:
        row["last_seq"] = data.last_seq[row["id"]]
        row["last_activity_at"] = _when(minute)


def _add_members(
    rows: _Rows, data: Dataset, counts: dict[str, int], rng: random.Random
) -> None:
    for conversation_id, people in data.members_of.items():
        count = counts[conversation_id]
        for position, user_id in enumerate(people):
            if user_id == data.heavy_user:
                read = max(0, count - HEAVY_USER_BEHIND)
            else:
                read = rng.randint(max(0, count - 200), count)
            rows.add(members, {
                "conversation_id": conversation_id, "user_id": user_id,
                "role": "owner" if position == 0 else "member", "joined_at": _when(position),
                "last_read_seq": read, "last_delivered_seq": max(read, count - 5),
            })  # fmt: skip


def _add_reactions_and_attachments(
    rows: _Rows, data: Dataset, scale: Scale, rng: random.Random
) -> None:
    for conversation_id, ids in data.message_ids.items():
        people = data.members_of[conversation_id]
        for message_id in ids[1:]:
            if rng.random() < 0.2:
                for user_id in rng.sample(people, min(len(people), rng.randint(1, 3))):
                    rows.add(reactions, {
                        "message_id": message_id, "user_id": user_id,
                        "emoji": rng.choice(["👍", "🎉", "❤️"]), "created_at": START,
                    })  # fmt: skip
            if rng.random() < scale.attachment_share:
                _add_attachment(rows, rng.choice(people), message_id, conversation_id)
    for user_id in data.user_ids[:50]:  # uploads not sent yet
        data.unclaimed[user_id] = _add_attachment(rows, user_id, None, None)


def _add_attachment(
    rows: _Rows, uploader: str, message_id: str | None, conversation_id: str | None
) -> str:
    attachment_id = new_id()
    original = {"key": f"a/{attachment_id}", "content_type": "text/plain", "size": 10,
                "sha256": "0" * 64, "width": None, "height": None}  # fmt: skip
    rows.add(attachments, {
        "id": attachment_id, "uploader_id": uploader, "message_id": message_id,
        "conversation_id": conversation_id, "position": 0, "name": "notes.txt",
        "content_type": "text/plain", "kind": "document", "size": 10, "width": None,
        "height": None, "sha256": "0" * 64, "variants": json.dumps({"original": original}),
        "created_at": START, "claimed_at": START if message_id else None, "deleted_at": None,
    })  # fmt: skip
    return attachment_id


def _add_sessions(rows: _Rows, data: Dataset, scale: Scale) -> None:
    far = START + timedelta(days=3650)
    for user_id in data.user_ids:
        for n in range(scale.sessions_per_user):
            session_id = new_id()
            data.session_ids.setdefault(user_id, []).append(session_id)
            rows.add(sessions, {
                "id": session_id, "user_id": user_id, "device_name": f"device {n}",
                "user_agent": "", "ip_address": "", "created_at": START, "last_used_at": START,
                "expires_at": far, "revoked_at": START if n == 0 else None,
                "revoked_reason": "logout" if n == 0 else None,
            })  # fmt: skip
            for k in range(3):  # two rotated, one current
                rows.add(refresh_tokens, {
                    "token_hash": f"{session_id}{k:02d}".ljust(64, "0"),
                    "session_id": session_id, "created_at": START,
                    "rotated_at": START if k < 2 else None,
                })  # fmt: skip


def _add_contacts(rows: _Rows, data: Dataset, rng: random.Random) -> None:
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < len(data.user_ids) * 3:
        a, b = rng.sample(data.user_ids, 2)
        if (b, a) not in pairs:
            pairs.add((a, b))
    for a, b in sorted(pairs):
        rows.add(contacts, {
            "requester_id": a, "addressee_id": b,
            "status": "accepted" if rng.random() < 0.8 else "pending",
            "created_at": START, "updated_at": START,
        })  # fmt: skip
    for a, b in sorted(pairs)[: len(data.user_ids) // 4]:
        rows.add(blocks, {"blocker_id": b, "blocked_id": a, "created_at": START})
