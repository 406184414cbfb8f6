"""What goes into an export, section by section (DESIGN §6.4; issue #19).

Personal export (right of access) — the user's own data and nothing of others' private data:
``profile.json`` (account, email address, notification defaults), ``sessions.json``,
``contacts.json`` (contacts, requests and blocks), ``conversations.json`` (each conversation
the user is in and their membership), ``messages.json`` (every message they sent, current
text after edits), ``reactions.json`` (theirs), ``uploads.json`` plus ``uploads/`` (the
files they uploaded), and ``index.html``, a readable page of all of it.

Conversation export (for its admins): ``conversation.json`` (with members), ``messages.json``
(every message, system ones included), ``index.html``.

Messages are read in pages by (conversation, seq) or by id, so neither export holds more than
one page in memory; files stream from the BlobStore into the archive.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import or_, select

from parley.clock import isoformat
from parley.lifecycle.zip_sink import ZipSink
from parley.media.blobstore import BlobStore
from parley.services.attachment_records import record_from_row
from parley.services.message_records import load_messages
from parley.store.db import Database
from parley.store.tables.accounts import sessions, users
from parley.store.tables.contacts import blocks, contacts
from parley.store.tables.conversations import conversations, members
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages, reactions
from parley.store.tables.notifications import email_addresses, notification_settings

PAGE = 500
STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap}"
)


def when(value: Any) -> str | None:
    return isoformat(value) if value is not None else None


def _escape(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{_escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _message_row(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    sender = message.get("sender_id")
    return {
        "seq": message["seq"],
        "time": message["created_at"],
        "from": names.get(sender, sender) if sender else "(system)",
        "text": message["content"] if message["kind"] == "text" else message.get("system_event"),
    }


class ExportWriter:
    """Reads one export's data and writes it into a :class:`ZipSink`."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    # --- personal

    async def personal(self, sink: ZipSink, user_id: str, on_progress: Any) -> None:
        async with self._db.read() as conn:
            user = (await conn.execute(select(users).where(users.c.id == user_id))).one()
            email = (
                await conn.execute(select(email_addresses).where(email_addresses.c.user_id == user_id))
            ).first()
            prefs = (
                await conn.execute(
                    select(notification_settings).where(notification_settings.c.user_id == user_id)
                )
            ).first()
            profile = {
                "id": user.id,
                "username": user.username,
                "display_name": user.display_name,
                "is_admin": user.is_admin,
                "created_at": when(user.created_at),
                "last_seen_at": when(user.last_seen_at),
                "email": None
                if email is None
                else {"address": email.address, "verified_at": when(email.verified_at)},
                "notify_default": prefs.notify_default if prefs else "all",
                "email_digest": prefs.email_digest if prefs else True,
            }
            session_rows = [
                {
                    "id": s.id,
                    "device_name": s.device_name,
                    "user_agent": s.user_agent,
                    "ip_address": s.ip_address,
                    "created_at": when(s.created_at),
                    "last_used_at": when(s.last_used_at),
                    "expires_at": when(s.expires_at),
                    "revoked_at": when(s.revoked_at),
                }
                for s in await conn.execute(
                    select(sessions).where(sessions.c.user_id == user_id).order_by(sessions.c.created_at)
                )
            ]
            contact_rows = await self._contacts(conn, user_id)
            blocked = [
                {"user_id": b.blocked_id, "username": b.username, "created_at": when(b.created_at)}
                for b in await conn.execute(
                    select(blocks, users.c.username)
                    .join(users, users.c.id == blocks.c.blocked_id)
                    .where(blocks.c.blocker_id == user_id)
                )
            ]
            conversation_rows = [
                {
                    "id": c.id,
                    "type": c.type,
                    "name": c.name,
                    "topic": c.topic,
                    "role": c.role,
                    "joined_at": when(c.joined_at),
                    "last_read_seq": c.last_read_seq,
                }
                for c in await conn.execute(
                    select(
                        conversations.c.id,
                        conversations.c.type,
                        conversations.c.name,
                        conversations.c.topic,
                        members.c.role,
                        members.c.joined_at,
                        members.c.last_read_seq,
                    )
                    .join(members, members.c.conversation_id == conversations.c.id)
                    .where(members.c.user_id == user_id)
                    .order_by(conversations.c.id)
                )
            ]
            reaction_rows = [
                {"message_id": r.message_id, "emoji": r.emoji, "created_at": when(r.created_at)}
                for r in await conn.execute(
                    select(reactions).where(reactions.c.user_id == user_id).order_by(reactions.c.created_at)
                )
            ]
            upload_rows = [
                record_from_row(row)
                for row in await conn.execute(
                    select(attachments)
                    .where(attachments.c.uploader_id == user_id, attachments.c.deleted_at.is_(None))
                    .order_by(attachments.c.id)
                )
            ]
        await sink.write_json("profile.json", profile)
        await sink.write_json("sessions.json", session_rows)
        await sink.write_json("contacts.json", {"contacts": contact_rows, "blocked": blocked})
        await sink.write_json("conversations.json", conversation_rows)
        await sink.write_json("reactions.json", reaction_rows)
        await on_progress(20)
        sent = await sink.write_json_pages("messages.json", self._sent_pages(user_id))
        await on_progress(50)
        uploads = []
        for index, record in enumerate(upload_rows):
            original = record.variants.get("original")
            path = f"uploads/{record.id}-{_safe_name(record.name)}"
            if original is not None:
                stream = await self._blobs.open(original.key)
                try:
                    await sink.write_chunks(path, _iterate(stream))
                finally:
                    await stream.aclose()
            uploads.append(
                {
                    "id": record.id,
                    "name": record.name,
                    "content_type": record.content_type,
                    "size": record.size,
                    "message_id": record.message_id,
                    "conversation_id": record.conversation_id,
                    "file": path if original is not None else None,
                }
            )
            await on_progress(50 + int(30 * (index + 1) / max(len(upload_rows), 1)))
        await sink.write_json("uploads.json", uploads)
        names = {user_id: user.username}
        await sink.write_chunks(
            "index.html",
            self._personal_html(
                profile, session_rows, contact_rows, blocked, conversation_rows, uploads, sent, names
            ),
        )

    async def _contacts(self, conn: Any, user_id: str) -> list[dict[str, Any]]:
        rows = await conn.execute(
            select(contacts).where(
                or_(contacts.c.requester_id == user_id, contacts.c.addressee_id == user_id)
            )
        )
        found = list(rows)
        other_ids = {r.addressee_id if r.requester_id == user_id else r.requester_id for r in found}
        usernames = {
            r.id: r.username
            for r in await conn.execute(select(users.c.id, users.c.username).where(users.c.id.in_(other_ids)))
        }
        result = []
        for r in found:
            other = r.addressee_id if r.requester_id == user_id else r.requester_id
            result.append(
                {
                    "user_id": other,
                    "username": usernames.get(other),
                    "direction": "outgoing" if r.requester_id == user_id else "incoming",
                    "status": r.status,
                    "created_at": when(r.created_at),
                }
            )
        return result

    async def _sent_pages(self, user_id: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The user's messages (not deleted), by id: one indexed page at a time."""
        after = ""
        while True:
            async with self._db.read() as conn:
                page = await load_messages(
                    conn,
                    select(messages)
                    .where(
                        messages.c.sender_id == user_id,
                        messages.c.kind == "text",
                        messages.c.deleted_at.is_(None),
                        messages.c.id > after,
                    )
                    .order_by(messages.c.id)
                    .limit(PAGE),
                    urls=None,  # the archive carries the files, not expiring links
                )
            if not page:
                return
            yield [_exported(m.to_public()) for m in page]
            after = page[-1].id
            if len(page) < PAGE:
                return

    async def _personal_html(
        self,
        profile: dict[str, Any],
        session_rows: list[dict[str, Any]],
        contact_rows: list[dict[str, Any]],
        blocked: list[dict[str, Any]],
        conversation_rows: list[dict[str, Any]],
        uploads: list[dict[str, Any]],
        sent: int,
        names: dict[str, str],
    ) -> AsyncIterator[str]:
        title = f"Parley export of {profile['username']}"
        yield f"<!doctype html><meta charset=utf-8><title>{_escape(title)}</title><style>{STYLE}</style>"
        yield f"<h1>{_escape(title)}</h1><h2>Profile</h2>"
        yield _table([profile], ["id", "username", "display_name", "created_at", "email"])
        yield "<h2>Sessions</h2>" + _table(
            session_rows, ["device_name", "user_agent", "ip_address", "created_at", "revoked_at"]
        )
        yield "<h2>Contacts</h2>" + _table(contact_rows, ["username", "direction", "status"])
        yield "<h2>Blocked</h2>" + _table(blocked, ["username", "created_at"])
        yield "<h2>Conversations</h2>" + _table(conversation_rows, ["name", "type", "role", "joined_at"])
        yield "<h2>Uploads</h2>" + _table(uploads, ["name", "content_type", "size", "file"])
        yield f"<h2>Messages you sent ({sent})</h2><table><tr><th>conversation</th><th>time</th><th>text</th></tr>"
        async for page in self._sent_pages(profile["id"]):
            yield "".join(
                f"<tr><td>{_escape(m['conversation_id'])}</td><td>{_escape(m['created_at'])}</td>"
                f"<td><pre>{_escape(m['content'])}</pre></td></tr>"
                for m in page
            )
        yield "</table>"

    # --- conversation

    async def conversation(self, sink: ZipSink, conversation_id: str, on_progress: Any) -> None:
        async with self._db.read() as conn:
            conv = (
                await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
            ).one()
            member_rows = [
                {
                    "user_id": m.user_id,
                    "username": m.username,
                    "display_name": m.display_name,
                    "role": m.role,
                    "joined_at": when(m.joined_at),
                }
                for m in await conn.execute(
                    select(members, users.c.username, users.c.display_name)
                    .join(users, users.c.id == members.c.user_id)
                    .where(members.c.conversation_id == conversation_id)
                    .order_by(members.c.joined_at)
                )
            ]
            sender_ids = {
                r.sender_id
                for r in await conn.execute(
                    select(messages.c.sender_id)
                    .where(messages.c.conversation_id == conversation_id, messages.c.sender_id.is_not(None))
                    .distinct()
                )
            }
            names = {
                r.id: r.display_name
                for r in await conn.execute(
                    select(users.c.id, users.c.display_name).where(users.c.id.in_(sender_ids))
                )
            }
        info = {
            "id": conv.id,
            "type": conv.type,
            "name": conv.name,
            "topic": conv.topic,
            "created_at": when(conv.created_at),
            "last_seq": conv.last_seq,
            "members": member_rows,
        }
        await sink.write_json("conversation.json", info)
        await on_progress(10)
        total = await sink.write_json_pages(
            "messages.json", self._conversation_pages(conversation_id, conv.last_seq, on_progress)
        )

        async def page_html() -> AsyncIterator[str]:
            title = f"Parley export of {conv.name or conv.id}"
            yield f"<!doctype html><meta charset=utf-8><title>{_escape(title)}</title><style>{STYLE}</style>"
            yield f"<h1>{_escape(title)}</h1><p>{_escape(conv.topic)}</p><h2>Members</h2>"
            yield _table(member_rows, ["username", "display_name", "role", "joined_at"])
            yield f"<h2>Messages ({total})</h2><table><tr><th>seq</th><th>time</th><th>from</th><th>text</th></tr>"
            async for page in self._conversation_pages(conversation_id, conv.last_seq, None):
                yield "".join(
                    "<tr><td>{seq}</td><td>{time}</td><td>{sender}</td><td><pre>{text}</pre></td></tr>".format(
                        seq=row["seq"],
                        time=_escape(row["time"]),
                        sender=_escape(row["from"]),
                        text=_escape(row["text"]),
                    )
                    for row in (_message_row(m, names) for m in page)
                )
            yield "</table>"

        await sink.write_chunks("index.html", page_html())

    async def _conversation_pages(
        self, conversation_id: str, last_seq: int, on_progress: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        after = 0
        while True:
            async with self._db.read() as conn:
                page = await load_messages(
                    conn,
                    select(messages)
                    .where(messages.c.conversation_id == conversation_id, messages.c.seq > after)
                    .order_by(messages.c.seq)
                    .limit(PAGE),
                    urls=None,  # the archive carries the files, not expiring links
                )
            if not page:
                return
            yield [_exported(m.to_public()) for m in page]
            after = page[-1].seq
            if on_progress is not None:
                await on_progress(10 + int(80 * min(after, last_seq) / max(last_seq, 1)))
            if len(page) < PAGE:
                return


def _exported(message: dict[str, Any]) -> dict[str, Any]:
    """A message as exported: no signed URLs (they expire; the files are in the archive)."""
    message = dict(message)
    message["attachments"] = [
        {k: v for k, v in a.items() if k not in {"url", "urls", "thumbnail_url", "variants"}}
        for a in message.get("attachments", [])
    ]
    return message


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return keep.strip("._")[:100] or "file"


async def _iterate(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
