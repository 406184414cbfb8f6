"""Profile pictures (DESIGN §6.3): upload, square crop, two sizes, served to everyone.

An upload goes through the attachment pipeline's checks (``Uploads.identify``: sniffed
type, size limit) and its decoder (``Uploads.decode_image``: a worker process under pixel,
memory and time limits, metadata stripped, the first frame of an animation). The square
crop is made from that clean, bounded thumbnail (at most 1280 pixels a side), centred, as
WebP at 256 and 64 pixels, and stored under ``avatars/{user}/{key}/{size}.webp``.

Each new picture gets a new random ``key`` (``users.avatar_key``), so its URLs
(``accounts.avatar_urls``) are unguessable and never change content: served without
authentication (an ``<img>`` sends no token) and cached for good. Replacing or removing a
picture deletes the old blobs after the new key is committed; readers holding the old URL
get 404 from then on. A profile change is announced as ``user.updated``, as a name change.

A group's picture works the same way (``conversations.avatar_key``, blobs under
``group-avatars/{conversation}/{key}/``), set and removed by the group's owner and admins,
announced as ``conversation.updated``.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import select, update

from parley.clock import utcnow
from parley.errors import NotFound
from parley.media.blobstore import BlobStore, BlobStream
from parley.media.sniff import MediaKind
from parley.services.accounts import AVATAR_SIZES, Accounts, User
from parley.services.attachment_errors import ImageUnreadable
from parley.services.conversations import Conversations
from parley.services.upload_sink import ReceivedFile
from parley.services.uploads import Uploads
from parley.store.db import Database
from parley.store.tables.accounts import NEXT_PROFILE_VERSION, users
from parley.store.tables.conversations import conversations

CONTENT_TYPE = "image/webp"
QUALITY = 85
SOURCE_VARIANT = "thumb1280"  # the decoded, bounded, metadata-free picture to crop from


def blob_key(user_id: str, avatar_key: str, size: int) -> str:
    return f"avatars/{user_id}/{avatar_key}/{size}.webp"


def group_blob_key(conversation_id: str, avatar_key: str, size: int) -> str:
    return f"group-avatars/{conversation_id}/{avatar_key}/{size}.webp"


async def delete_user_picture(blobs: BlobStore, user_id: str, avatar_key: str) -> None:
    """Every size of a user's picture (replaced, removed, or its owner erased)."""
    for size in AVATAR_SIZES.values():
        await blobs.delete(blob_key(user_id, avatar_key, size))


def crop_square(source: Path, target_dir: Path) -> dict[int, Path]:
    """Centre-crop ``source`` to a square and write each avatar size as WebP."""
    written: dict[int, Path] = {}
    with Image.open(source, formats=["WEBP"]) as image:
        mode = "RGBA" if image.mode in {"RGBA", "LA", "PA", "P"} else "RGB"
        picture = image.convert(mode)
        for size in sorted(AVATAR_SIZES.values(), reverse=True):
            square = ImageOps.fit(picture, (size, size), Image.Resampling.LANCZOS)
            path = target_dir / f"avatar-{size}.webp"
            square.save(path, format="WEBP", quality=QUALITY, method=4)
            written[size] = path
    return written


class Avatars:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        uploads: Uploads,
        accounts: Accounts,
        conversations_service: Conversations,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._uploads = uploads
        self._accounts = accounts
        self._conversations = conversations_service
        conversations_service.on_deleted(self._group_deleted)

    async def set_for_user(
        self, user_id: str, received: ReceivedFile, *, filename: str | None, declared_type: str = ""
    ) -> User:
        key = secrets.token_urlsafe(12)
        await self._store(
            received, filename, declared_type, lambda size: blob_key(user_id, key, size)
        )
        await self._switch(user_id, key)
        return await self._accounts.get(user_id)

    async def set_for_group(
        self,
        user_id: str,
        conversation_id: str,
        received: ReceivedFile,
        *,
        filename: str | None,
        declared_type: str = "",
    ) -> None:
        """A group's new picture (its owner and admins): checked before the image is
        decoded, and again when the key is switched."""
        await self._conversations.check_group_admin(user_id, conversation_id)
        key = secrets.token_urlsafe(12)
        await self._store(
            received, filename, declared_type, lambda size: group_blob_key(conversation_id, key, size)
        )
        try:
            old = await self._conversations.switch_avatar(user_id, conversation_id, key)
        except Exception:
            await self._delete_group_blobs(conversation_id, key)  # refused meanwhile
            raise
        if old is not None:
            await self._delete_group_blobs(conversation_id, old)

    async def remove_for_group(self, user_id: str, conversation_id: str) -> None:
        old = await self._conversations.switch_avatar(user_id, conversation_id, None)
        if old is not None:
            await self._delete_group_blobs(conversation_id, old)

    async def open_group(self, conversation_id: str, avatar_key: str, size: int) -> BlobStream:
        """The group's picture at ``size`` while ``avatar_key`` is its current one."""
        if size not in AVATAR_SIZES.values():
            raise NotFound("No such picture size")
        async with self._db.read() as conn:
            current = (
                await conn.execute(
                    select(conversations.c.avatar_key).where(conversations.c.id == conversation_id)
                )
            ).scalar()
        if current is None or current != avatar_key:
            raise NotFound("No such picture")
        return await self._blobs.open(group_blob_key(conversation_id, avatar_key, size))

    async def _group_deleted(self, conversation_id: str, key: str | None) -> None:
        if key is not None:
            await self._delete_group_blobs(conversation_id, key)

    async def _delete_group_blobs(self, conversation_id: str, key: str) -> None:
        for size in AVATAR_SIZES.values():
            await self._blobs.delete(group_blob_key(conversation_id, key, size))

    async def _store(
        self,
        received: ReceivedFile,
        filename: str | None,
        declared_type: str,
        key_of: Callable[[int], str],
    ) -> None:
        """Check, decode, crop and store a picture at every size (``key_of(size)``)."""
        media_type = await self._uploads.identify(
            received, filename=filename, declared_type=declared_type
        )
        if media_type.kind is not MediaKind.IMAGE:
            raise ImageUnreadable("A picture must be a JPEG, PNG, GIF or WebP image")
        workdir = await asyncio.to_thread(self._uploads.make_workdir)
        try:
            processed = await self._uploads.decode_image(received.path, media_type, workdir)
            source = next(v.path for v in processed.variants if v.name == SOURCE_VARIANT)
            sizes = await asyncio.to_thread(crop_square, source, workdir)
            for size, path in sizes.items():
                await self._blobs.put_file(key_of(size), path, content_type=CONTENT_TYPE)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def remove_for_user(self, user_id: str) -> User:
        if not await self._switch(user_id, None):
            raise NotFound("You have no profile picture")
        return await self._accounts.get(user_id)

    async def open(self, user_id: str, avatar_key: str, size: int) -> BlobStream:
        """The picture at ``size`` while ``avatar_key`` is the user's current one."""
        if size not in AVATAR_SIZES.values():
            raise NotFound("No such picture size")
        async with self._db.read() as conn:
            current = (
                await conn.execute(
                    select(users.c.avatar_key).where(
                        users.c.id == user_id, users.c.deactivated_at.is_(None)
                    )
                )
            ).scalar()
        if current is None or current != avatar_key:
            raise NotFound("No such picture")
        return await self._blobs.open(blob_key(user_id, avatar_key, size))

    async def _switch(self, user_id: str, key: str | None) -> bool:
        """Make ``key`` the current picture; the old one's blobs go. Whether there was one
        to replace (or a new one set). Concurrent uploads: the last commit wins, and every
        loser's blobs are deleted too (each deletes what it replaced)."""
        async with self._db.transaction() as conn:
            current = select(users.c.avatar_key).where(users.c.id == user_id)
            if conn.dialect.name == "postgresql":  # SQLite's write transactions are serial
                current = current.with_for_update()
            old = (await conn.execute(current)).scalar()
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(avatar_key=key, updated_at=utcnow(), profile_version=NEXT_PROFILE_VERSION)
            )
        if old is not None:
            await delete_user_picture(self._blobs, user_id, old)
        await self._accounts.announce(user_id)
        return key is not None or old is not None
