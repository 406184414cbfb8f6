"""``parley backup DIR`` and ``parley restore DIR`` (DESIGN §6.4; docs/lifecycle.md).

A backup is a directory:

- ``parley.db`` (SQLite) — made with SQLite's online backup API, a consistent snapshot
  taken while the server keeps writing (WAL readers never block the writer); or
  ``database.dump`` (PostgreSQL) — ``pg_dump --format=custom``, one snapshot transaction;
- ``media/`` — every blob of the media store, local directory or S3, one file per key
  (``backup_media``: through the ``BlobStore`` port, streamed). Blobs are immutable and
  written atomically, so a blob copied is a whole blob. Copied *after* the database, so
  every blob a backed-up row names was there to copy (bar one the sweeps deleted in
  between, whose row was going too);
- ``secret.key`` / ``vapid_private_key.pem`` when the data directory holds them: without the
  signing secret restored, every token and signed link of the old server is void;
- ``manifest.json`` — format, Parley version, schema revision, the media store it came
  from, and the size and SHA-256 of every file; written last, so a backup without it is
  incomplete.

``restore`` verifies every checksum before touching anything, refuses to overwrite a
database that has data (or a blob the media store already holds) without ``--force``,
restores the database and puts every blob into the configured store (whichever kind the
backup came from), then migrates the schema forward (a backup from an older Parley
restores into a newer one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url

from parley import __version__
from parley.config import DATABASE_FILE_NAME, SECRET_FILE_NAME, Settings
from parley.lifecycle.backup_media import MEDIA, check_keys, copy_in, copy_out, first_present
from parley.lifecycle.progress import Progress
from parley.media.blobstore import BlobStore, InvalidKey
from parley.media.factory import build_blob_store

T = TypeVar("T")

MANIFEST = "manifest.json"
FORMAT = 1
PG_DUMP_FILE = "database.dump"
KEY_FILES = (SECRET_FILE_NAME, "vapid_private_key.pem")
SQLITE_PAGES_PER_STEP = 1024  # ~4 MB per step: the writer waits at most one step
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp"):
            yield path


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump / pg_restore, the password passed in the environment (not on
    the command line, where ``ps`` would show it)."""
    url: URL = make_url(settings.effective_database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client tools)") from None
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:2000]}")


# --- backup


async def backup(settings: Settings, target: Path, *, revision: str | None, progress: Progress) -> dict[str, Any]:
    """Write a backup into ``target`` (created; must be empty). Returns the manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new directory")
    store = _media_store(settings)  # a misconfigured store fails before the long dump
    try:
        target.mkdir(parents=True, exist_ok=True)
        if settings.is_sqlite:
            database = await asyncio.to_thread(_backup_sqlite, settings, target, progress)
        else:
            database = await asyncio.to_thread(_backup_postgres, settings, target)
        blobs = await _media_step("copying media out of", settings, copy_out(store, target / MEDIA, progress))
    finally:
        await store.close()
    for name in KEY_FILES:
        source = settings.data_dir / name
        if source.exists():
            shutil.copy2(source, target / name)
            os.chmod(target / name, 0o600)
    files = await asyncio.to_thread(_checksums, target, progress)
    manifest = {
        "format": FORMAT,
        "parley_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "schema_revision": revision,
        "media": settings.media_backend,
        "blobs": blobs,
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _checksums(target: Path, progress: Progress) -> dict[str, dict[str, Any]]:
    files = {}
    entries = [p for p in _files(target) if p.name != MANIFEST]
    for index, path in enumerate(entries, 1):
        files[path.relative_to(target).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        progress.show("checksums", index, len(entries))
    return files


def _media_store(settings: Settings) -> BlobStore:
    try:
        return build_blob_store(settings)
    except ValueError as exc:  # s3 without a bucket
        raise BackupError(str(exc)) from None


async def _media_step(what: str, settings: Settings, step: Awaitable[T]) -> T:
    """``step``, its store's failure (a bucket gone, credentials refused, a full disk) told
    as a ``BackupError`` naming the store, not as the adapter's own exception."""
    try:
        return await step
    except BackupError:
        raise
    except Exception as exc:  # the store's adapter raises its own types (botocore, OSError)
        raise BackupError(
            f"{what} the {settings.media_backend} media store failed: {type(exc).__name__}: {exc}"
        ) from exc


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.effective_database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _backup_sqlite(settings: Settings, target: Path, progress: Progress) -> str:
    source_path = _sqlite_path(settings)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    source = sqlite3.connect(source_path)
    copy = sqlite3.connect(target / DATABASE_FILE_NAME)
    try:
        source.execute(f"PRAGMA busy_timeout={10_000}")

        def step(_status: int, remaining: int, total: int) -> None:
            progress.show("database", total - remaining, total)

        source.backup(copy, pages=SQLITE_PAGES_PER_STEP, progress=step)
        # A self-contained file: no -wal beside it in the backup.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        source.close()
    return "sqlite"


def _backup_postgres(settings: Settings, target: Path) -> str:
    url, env = _libpq(settings)
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target / PG_DUMP_FILE), url], env)
    return "postgresql"


# --- restore


def verify(source: Path) -> dict[str, Any]:
    """The manifest, after checking every file it lists; ``BackupError`` otherwise."""
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{source} has no {MANIFEST}: not a backup, or an incomplete one")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            raise BackupError(f"{name} does not match its checksum: the backup is damaged")
    return manifest


async def restore(
    settings: Settings,
    source: Path,
    *,
    force: bool,
    has_data: Callable[[], Awaitable[bool]],
    progress: Progress,
) -> dict[str, Any]:
    """Restore ``source`` into the configured database, media store and data directory."""
    manifest = await asyncio.to_thread(verify, source)
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest["database"] != kind:
        raise BackupError(
            f"the backup holds a {manifest['database']} database; this server uses {kind}"
        )
    try:
        keys = check_keys(manifest["files"])
    except InvalidKey as exc:
        raise BackupError(
            f"the manifest names a media file that is no blob key ({exc}): the backup is damaged"
        ) from None
    if not force and await has_data():
        raise BackupError("the database already has data: pass --force to overwrite it")
    store = _media_store(settings)
    try:
        if not force and keys:
            present = await _media_step("listing", settings, first_present(store, set(keys)))
            if present is not None:
                raise BackupError(f"{MEDIA}/{present} is in the media store: pass --force to overwrite media")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            await asyncio.to_thread(_restore_sqlite, settings, source)
        else:
            url, env = _libpq(settings)
            await asyncio.to_thread(
                _run,
                ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                 "--dbname", url, str(source / PG_DUMP_FILE)],
                env,
            )
        await _media_step("restoring media into", settings, copy_in(store, source / MEDIA, keys, progress))
    finally:
        await store.close()
    for name in KEY_FILES:
        if name in manifest["files"] and (force or not (settings.data_dir / name).exists()):
            shutil.copy2(source / name, settings.data_dir / name)
            os.chmod(settings.data_dir / name, 0o600)
    return manifest


def _restore_sqlite(settings: Settings, source: Path) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    backup_copy = sqlite3.connect(source / DATABASE_FILE_NAME)
    live = sqlite3.connect(target)
    try:
        live.execute(f"PRAGMA busy_timeout={10_000}")
        # The backup API replaces the whole database, WAL included, as one write.
        backup_copy.backup(live)
    finally:
        live.close()
        backup_copy.close()
