"""The attachment record, its wire payload, and the queries messages make on attachments.

Used from inside other services' transactions, so every function takes the connection:
- ``load_public_for_messages``: what ``message_records.load_messages`` puts in
  ``Message.attachments`` (name, size, type, kind, dimensions, signed variant URLs);
- ``find_unusable`` / ``claim``: the group commit's check and its conditional claim;
  these three are synchronous (they run inside ``Database.write`` and ``read_messages``);
- ``release_for_message``: a deleted message gives its attachments up for removal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, case, insert, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat
from parley.errors import ParleyError
from parley.ids import new_id
from parley.services.attachment_errors import AttachmentAlreadyUsed, InvalidAttachment
from parley.services.attachment_urls import URL_PREFIX, AttachmentUrls
from parley.store.one_of import one_of
from parley.store.tables.media import attachments

ORIGINAL = "original"


@dataclass(frozen=True, slots=True)
class VariantRecord:
    name: str
    key: str
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    id: str
    uploader_id: str | None
    message_id: str | None
    conversation_id: str | None
    name: str
    content_type: str
    kind: str
    size: int
    width: int | None
    height: int | None
    sha256: str
    variants: dict[str, VariantRecord]
    created_at: datetime
    claimed_at: datetime | None
    deleted_at: datetime | None
    blob_owner_id: str | None = None  # a forwarded file: the row whose blobs it shares
    # An opaque client-encrypted blob (DESIGN §6.1): name and type say nothing of it.
    encrypted: bool = False

    @property
    def claimed(self) -> bool:
        return self.claimed_at is not None

    def to_public(self, urls: AttachmentUrls | None) -> dict[str, Any]:
        """The payload clients get. Variant URLs are signed when a signer is bound (they
        then work in ``<img src>``); otherwise they are plain paths needing a bearer."""
        expires = urls.expiry() if urls is not None else None
        variants: dict[str, Any] = {}
        for name, variant in self.variants.items():
            if urls is not None and expires is not None:
                url = urls.url(self.id, name, expires=expires)
            else:
                url = f"{URL_PREFIX}/{self.id}/{name}"
            variants[name] = {
                "url": url,
                "content_type": variant.content_type,
                "size": variant.size,
                "width": variant.width,
                "height": variant.height,
            }
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "url": variants[ORIGINAL]["url"],
            "variants": variants,
            "urls_expire_at": isoformat_unix(expires) if expires is not None else None,
            "created_at": isoformat(self.created_at),
            "encrypted": self.encrypted,
        }

    def blob_keys(self) -> list[str]:
        return [variant.key for variant in self.variants.values()]


def isoformat_unix(seconds: int) -> str:
    return isoformat(datetime.fromtimestamp(seconds, UTC))


def variants_to_json(variants: Iterable[VariantRecord]) -> str:
    return json.dumps({v.name: v.to_json() for v in variants}, sort_keys=True)


def record_from_row(row: Row[Any]) -> AttachmentRecord:
    raw: dict[str, dict[str, Any]] = json.loads(row.variants)
    variants = {
        name: VariantRecord(
            name=name,
            key=str(v["key"]),
            content_type=str(v["content_type"]),
            size=int(v["size"]),
            sha256=str(v["sha256"]),
            width=v.get("width"),
            height=v.get("height"),
        )
        for name, v in raw.items()
    }
    return AttachmentRecord(
        id=row.id,
        uploader_id=row.uploader_id,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        name=row.name,
        content_type=row.content_type,
        kind=row.kind,
        size=row.size,
        width=row.width,
        height=row.height,
        sha256=row.sha256,
        variants=variants,
        created_at=row.created_at,
        claimed_at=row.claimed_at,
        deleted_at=row.deleted_at,
        blob_owner_id=row.blob_owner_id,
        encrypted=bool(row.encrypted),
    )


async def load_record(conn: AsyncConnection, attachment_id: str) -> AttachmentRecord | None:
    row = (await conn.execute(select(attachments).where(attachments.c.id == attachment_id))).first()
    return record_from_row(row) if row is not None else None


_LIVE_ATTACHMENTS = (  # built once: see message_records' lookups
    select(attachments)
    .where(one_of(attachments.c.message_id, "ids"), attachments.c.deleted_at.is_(None))
    .order_by(attachments.c.message_id, attachments.c.position)
)


def load_public_for_messages(
    conn: Connection, message_ids: Sequence[str], urls: AttachmentUrls | None
) -> dict[str, list[dict[str, Any]]]:
    """Live attachments of these messages, in the order the sender gave them (their URLs
    signed with ``urls``; unsigned paths without)."""
    if not message_ids:
        return {}
    rows = conn.execute(_LIVE_ATTACHMENTS, {"ids": list(message_ids)})
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.message_id, []).append(record_from_row(row).to_public(urls))
    return found


def encrypted_among(conn: Connection, attachment_ids: Iterable[str]) -> set[str]:
    """Those of the uploads that are opaque client-encrypted blobs (DESIGN §6.1)."""
    rows = conn.execute(
        select(attachments.c.id).where(
            attachments.c.id.in_(list(attachment_ids)), attachments.c.encrypted.is_(True)
        )
    )
    return {row.id for row in rows}


def find_unusable(
    conn: Connection, sender_id: str, attachment_ids: Iterable[str]
) -> dict[str, ParleyError]:
    """For each id the sender may not attach: why. Another user's upload reads exactly like
    an unknown id, so ids reveal nothing about other people's files."""
    wanted = set(attachment_ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(
            attachments.c.id,
            attachments.c.uploader_id,
            attachments.c.claimed_at,
            attachments.c.deleted_at,
        ).where(attachments.c.id.in_(wanted))
    )
    problems: dict[str, ParleyError] = {i: InvalidAttachment() for i in wanted}
    for row in rows:
        if row.uploader_id != sender_id or row.deleted_at is not None:
            continue
        if row.claimed_at is not None:
            problems[row.id] = AttachmentAlreadyUsed()
        else:
            del problems[row.id]
    return problems


def claim(
    conn: Connection,
    *,
    message_id: str,
    conversation_id: str,
    sender_id: str,
    attachment_ids: Sequence[str],
    now: datetime,
) -> None:
    """Attach the uploads to the message — only if every one is still the sender's,
    unclaimed and live. The WHERE clause is the check, so two concurrent claims of one
    upload (two nodes, two batches) cannot both succeed: the loser's rowcount is short and
    ``AttachmentAlreadyUsed`` rolls its transaction back."""
    if not attachment_ids:
        return
    positions = {attachment_id: index for index, attachment_id in enumerate(attachment_ids)}
    result = conn.execute(
        update(attachments)
        .where(
            attachments.c.id.in_(list(attachment_ids)),
            attachments.c.uploader_id == sender_id,
            attachments.c.message_id.is_(None),
            attachments.c.claimed_at.is_(None),
            attachments.c.deleted_at.is_(None),
        )
        .values(
            message_id=message_id,
            conversation_id=conversation_id,
            claimed_at=now,
            position=case(positions, value=attachments.c.id, else_=0),
        )
    )
    if result.rowcount != len(attachment_ids):
        raise AttachmentAlreadyUsed()


def share(
    conn: Connection,
    *,
    source_message_id: str,
    message_id: str,
    conversation_id: str,
    sender_id: str,
    now: datetime,
) -> int:
    """Attach the live files of ``source_message_id`` to a forwarded message: new rows
    (their own ids, conversation and access) sharing the same blobs, named by
    ``blob_owner_id``. Nothing is copied in the BlobStore (DESIGN §6.5)."""
    rows = list(
        conn.execute(
            select(attachments)
            .where(attachments.c.message_id == source_message_id, attachments.c.deleted_at.is_(None))
            .order_by(attachments.c.position)
        )
    )
    if not rows:
        return 0
    conn.execute(
        insert(attachments),
        [
            {
                "id": new_id(),
                "uploader_id": sender_id,
                "message_id": message_id,
                "conversation_id": conversation_id,
                "position": row.position,
                "name": row.name,
                "content_type": row.content_type,
                "kind": row.kind,
                "size": row.size,
                "width": row.width,
                "height": row.height,
                "sha256": row.sha256,
                "variants": row.variants,
                "created_at": now,
                "claimed_at": now,
                "deleted_at": None,
                "blob_owner_id": row.blob_owner_id or row.id,
            }
            for row in rows
        ],
    )
    return len(rows)


async def still_shared(conn: AsyncConnection, records: Sequence[AttachmentRecord]) -> set[str]:
    """The blob owners among ``records`` whose blobs a live row still uses (a forward of
    them, or the original): the sweep must keep those blobs."""
    owners = {r.blob_owner_id or r.id for r in records}
    if not owners:
        return set()
    # Two index lookups in a UNION (the primary key, the partial blob_owner_id index): an OR
    # of the two let SQLite's planner, with statistics, read the whole table instead.
    live = attachments.c.deleted_at.is_(None)
    columns = (attachments.c.id, attachments.c.blob_owner_id)
    rows = await conn.execute(
        union(
            select(*columns).where(live, attachments.c.id.in_(owners)),
            select(*columns).where(live, attachments.c.blob_owner_id.in_(owners)),
        )
    )
    return {row.blob_owner_id or row.id for row in rows}


async def release_for_message(conn: AsyncConnection, message_id: str, now: datetime) -> int:
    """Mark a deleted message's attachments for removal (the sweep deletes the files)."""
    result = await conn.execute(
        update(attachments)
        .where(attachments.c.message_id == message_id, attachments.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    return int(result.rowcount or 0)
