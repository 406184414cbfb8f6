"""The group commit's transaction: every queued send checked and written at once.

``write_batch`` (its checks: ``services.send_admission``) is synchronous code of one
``Connection``: ``Database.write`` runs it as one write transaction (on SQLite in a single
hand-off to the writer thread). It makes a fixed number of queries however many
conversations the batch spans — each check reads every conversation of the batch at once —
and answers each request with its outcome: the stored message, the earlier message for a
repeated ``client_msg_id``, or the error to raise.

Each message takes the next ``seq`` of its conversation here, under the conversation's row
lock, so seq order is commit order (DESIGN §2 "Persistence").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update

from parley.errors import NotFound
from parley.ids import new_id
from parley.services import attachment_records
from parley.services.attachment_urls import AttachmentUrls
from parley.services.message_records import Message, read_messages
from parley.services.send_admission import SendRequest, SendResult, admissible, replay
from parley.store.bulk import execute_many
from parley.store.one_of import one_of
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages, thread_follows
from parley.store.upsert import insert_or_ignore

# The batch's writes, built once (building them cost about as much as running them).
_BUMP_ROOT = (
    update(messages)
    .where(messages.c.id == bindparam("root"))
    .values(
        version_seq=bindparam("version"),
        thread_reply_count=messages.c.thread_reply_count + bindparam("added"),
        thread_last_reply_at=bindparam("replied_at"),
    )
)
_MEMBERS_NAMED = (
    select(users.c.id, users.c.username_key)
    .join(members, members.c.user_id == users.c.id)
    .where(
        members.c.conversation_id == bindparam("conversation_id"),
        one_of(users.c.username_key, "names"),
    )
)
_ADVANCE_SEQ = (
    update(conversations)
    .where(conversations.c.id == bindparam("target"))
    .values(last_seq=bindparam("new_seq"), last_activity_at=bindparam("active_at"))
)
_INSERT_MESSAGES = messages.insert()



def resolve_mentions(
    conn: Connection, conversation_id: str, names: set[str] | frozenset[str]
) -> dict[str, str]:
    """Username → user id, for the names that belong to members of the conversation."""
    if not names:
        return {}
    rows = conn.execute(_MEMBERS_NAMED, {"conversation_id": conversation_id, "names": list(names)})
    return {row.username_key: row.id for row in rows}


def mention_ids(names: frozenset[str], resolved: dict[str, str]) -> list[str]:
    return [resolved[name] for name in sorted(names) if name in resolved]


@dataclass(frozen=True, slots=True)
class BatchWritten:
    """What a batch did: one outcome per request, in order; the messages created and the
    thread roots whose summary changed, each list by conversation then seq (the order
    their events go out in)."""

    outcomes: list[SendResult | BaseException]
    created: list[Message]
    roots: list[Message]


def write_batch(
    conn: Connection, batch: Sequence[SendRequest], now: datetime, urls: AttachmentUrls | None
) -> BatchWritten:
    """Check and write ``batch`` (see ``BatchWritten``)."""
    outcomes: list[SendResult | BaseException | None] = [None] * len(batch)
    duplicates: dict[int, int] = {}  # index -> index of the same client_msg_id earlier
    by_conversation: dict[str, list[int]] = defaultdict(list)
    for index, request in enumerate(batch):
        by_conversation[request.conversation_id].append(index)
    admitted = admissible(conn, batch, by_conversation, outcomes, duplicates, urls)
    new_rows: dict[int, dict[str, Any]] = {}
    mentioned: dict[int, list[str]] = {}  # the ids in each row's "mentions" (not parsed back)
    seq_updates = []
    root_bumps: list[dict[str, Any]] = []
    for conversation_id, (last_seq, fresh) in admitted.items():
        names = frozenset().union(*(batch[i].mention_names for i in fresh))
        resolved = resolve_mentions(conn, conversation_id, names)
        for offset, i in enumerate(fresh):
            seq = last_seq + 1 + offset
            request = batch[i]
            mentioned[i] = mention_ids(request.mention_names, resolved)
            new_rows[i] = {
                "id": new_id(),
                "conversation_id": conversation_id,
                "seq": seq,
                "version_seq": seq,
                "sender_id": request.sender_id,
                "kind": "text",
                "content": request.content,
                "client_msg_id": request.client_msg_id,
                "reply_to_id": request.reply_to_id,
                "mentions": json.dumps(mentioned[i]),
                "system_event": None,
                "created_at": now,
                "edited_at": None,
                "deleted_at": None,
                "thread_root_id": request.thread_root_id,
                "thread_broadcast": request.thread_broadcast,
                "thread_reply_count": 0,
                "thread_last_reply_at": None,
                "forwarded_from": request.forwarded_from,
                "pinned_at": None,
                "pinned_by": None,
                "ciphertext": request.ciphertext,
                "e2ee": request.e2ee,
            }
        # Each root replied to takes the next seqs, after its replies: its summary changed.
        replies: dict[str, int] = {}
        for i in fresh:
            root = batch[i].thread_root_id
            if root is not None:
                replies[root] = replies.get(root, 0) + 1
        next_seq = last_seq + len(fresh)
        for root, added in replies.items():
            next_seq += 1
            root_bumps.append({"root": root, "version": next_seq, "added": added, "replied_at": now})
        seq_updates.append({"target": conversation_id, "new_seq": next_seq, "active_at": now})
    if seq_updates:
        # The rows are locked (FOR UPDATE; SQLite's write lock) since _admissible read
        # last_seq: seq order stays commit order.
        execute_many(conn, _ADVANCE_SEQ, seq_updates)
        execute_many(conn, _INSERT_MESSAGES, list(new_rows.values()))
    if root_bumps:
        conn.execute(_BUMP_ROOT, root_bumps)
        follow_threads(
            conn,
            [(batch[i].thread_root_id, row) for i, row in new_rows.items() if batch[i].thread_root_id],
            now,
        )
    for i, row in new_rows.items():  # in this transaction: the message and its claim
        if batch[i].attachment_ids:
            attachment_records.claim(
                conn,
                message_id=row["id"],
                conversation_id=row["conversation_id"],
                sender_id=batch[i].sender_id,
                attachment_ids=batch[i].attachment_ids,
                now=now,
            )
    for i, row in new_rows.items():  # a forward shares the original's files
        source = batch[i].share_attachments_of
        if source is not None:
            attachment_records.share(
                conn,
                source_message_id=source,
                message_id=row["id"],
                conversation_id=row["conversation_id"],
                sender_id=batch[i].sender_id,
                now=now,
            )
    # A plain new message is exactly its row; only replies (preview) and attachments
    # (their public form) need reading back.
    reload = [
        r["id"]
        for i, r in new_rows.items()
        if batch[i].attachment_ids or r["reply_to_id"] or batch[i].share_attachments_of
    ]
    stored = (
        {m.id: m for m in read_messages(conn, select(messages).where(messages.c.id.in_(reload)), urls=urls)}
        if reload
        else {}
    )
    for i, row in new_rows.items():
        outcomes[i] = SendResult(
            stored.get(row["id"]) or _message_from_new_row(row, mentioned[i]), created=True
        )
    for i, first in duplicates.items():
        original = outcomes[first]
        outcomes[i] = replay(original.message, batch[i]) if isinstance(original, SendResult) else original
    created = sorted(
        (o.message for i, o in enumerate(outcomes) if i in new_rows and isinstance(o, SendResult)),
        key=lambda m: (m.conversation_id, m.seq),
    )
    roots = (
        read_messages(
            conn,
            select(messages)
            .where(messages.c.id.in_([b["root"] for b in root_bumps]))
            .order_by(messages.c.conversation_id, messages.c.version_seq),
            urls=urls,
        )
        if root_bumps
        else []
    )
    return BatchWritten([o if o is not None else NotFound() for o in outcomes], created, roots)


def follow_threads(
    conn: Connection, replies: Sequence[tuple[str | None, dict[str, Any]]], now: datetime
) -> None:
    """Taking part follows a thread (DESIGN §6.5): each reply's sender follows its root
    (again, after an unfollow) and has read it up to their reply; the root's author
    follows it too, unless they unfollowed it before."""
    if not replies:
        return
    roots = sorted({root for root, _ in replies if root})
    authors = {
        row.id: row.sender_id
        for row in conn.execute(
            select(messages.c.id, messages.c.sender_id).where(messages.c.id.in_(roots))
        )
    }
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for root, reply in replies:
        assert root is not None
        author = authors.get(root)
        if author is not None:
            rows.setdefault((root, author), _follow_row(root, author, reply["conversation_id"], 0, now))
        rows[(root, reply["sender_id"])] = _follow_row(
            root, reply["sender_id"], reply["conversation_id"], reply["seq"], now
        )
    conn.execute(
        insert_or_ignore(conn.dialect.name, thread_follows, ("root_id", "user_id")),
        list(rows.values()),
    )
    senders = {(root, reply["sender_id"]): reply["seq"] for root, reply in replies if root}
    conn.execute(
        update(thread_follows)
        .where(
            thread_follows.c.root_id == bindparam("root"),
            thread_follows.c.user_id == bindparam("user"),
        )
        .values(
            following=True,
            updated_at=bindparam("now"),
            last_read_seq=case(
                (thread_follows.c.last_read_seq < bindparam("seq"), bindparam("seq")),
                else_=thread_follows.c.last_read_seq,
            ),
        ),
        [{"root": r, "user": u, "seq": seq, "now": now} for (r, u), seq in senders.items()],
    )


def _follow_row(root: str, user: str, conversation_id: str, read: int, now: datetime) -> dict[str, Any]:
    return {
        "root_id": root,
        "user_id": user,
        "conversation_id": conversation_id,
        "following": True,
        "last_read_seq": read,
        "updated_at": now,
    }


def _message_from_new_row(row: dict[str, Any], mentions: list[str]) -> Message:
    """The message just inserted, as ``read_messages`` would read it back (no reactions,
    reply preview or attachments: those that have them are read back)."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        version_seq=row["version_seq"],
        sender_id=row["sender_id"],
        kind=row["kind"],
        content=row["content"],
        client_msg_id=row["client_msg_id"],
        reply_to_id=row["reply_to_id"],
        mentions=tuple(mentions),
        system_event=None,
        created_at=row["created_at"],
        edited_at=None,
        deleted_at=None,
        thread_root_id=row["thread_root_id"],
        thread_broadcast=bool(row["thread_broadcast"]),
        forwarded_from=json.loads(row["forwarded_from"]) if row["forwarded_from"] else None,
        ciphertext=row["ciphertext"],
        e2ee=json.loads(row["e2ee"]) if row["e2ee"] else None,
    )
