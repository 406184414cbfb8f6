"""Backup and restore (DESIGN §6.4) on both databases: a backup taken while ten senders
write restores into a new data directory and a new database, where every message
acknowledged before the backup started is present, the media came along and the server
starts; restore verifies checksums and refuses to overwrite without --force. With media on
S3 (moto's S3 server, ``tests/support/s3_stand_in.py``) the bucket's blobs come along too
and are restored into the restoring server's bucket."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.config import normalise_database_url
from parley.lifecycle.backup import BackupError, restore
from parley.lifecycle.progress import Progress
from tests import conftest
from tests.conftest import PG_ADMIN_URL, TEST_PASSWORD, make_user
from tests.support.attachment_helpers import png_bytes, upload_ok
from tests.support.chat_helpers import open_group, send
from tests.support.gateway_helpers import running_server, server_env
from tests.support.s3_stand_in import new_bucket, objects_in, s3_endpoint  # noqa: F401 (fixture)

PARLEY = str(Path(sys.executable).parent / "parley")
SENDERS = 10
COMMAND_TIMEOUT = 120.0


async def parley(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        PARLEY, *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    return int(process.returncode or 0), out.decode()


class FreshPostgres:
    """An empty, unmigrated database: what an operator restores into."""

    def __init__(self) -> None:
        self.admin = normalise_database_url(PG_ADMIN_URL)
        self.name = f"parley_restore_{secrets.token_hex(5)}"
        self.url = f"{self.admin.rpartition('/')[0]}/{self.name}"

    async def run(self, statement: str) -> None:
        engine = create_async_engine(self.admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def restore_target(tmp_path: Path, backend: str) -> AsyncIterator[tuple[Path, str]]:
    """A new data directory and a new, empty database of ``backend`` to restore into:
    (root, database URL); a PostgreSQL database is dropped afterwards."""
    root = tmp_path / "restored"
    root.mkdir()
    if backend == "sqlite":
        yield root, f"sqlite:///{root / 'data' / 'parley.db'}"
        return
    fresh = FreshPostgres()
    await fresh.run(f'CREATE DATABASE "{fresh.name}"')
    try:
        yield root, fresh.url
    finally:
        await fresh.run(f'DROP DATABASE IF EXISTS "{fresh.name}" WITH (FORCE)')


@pytest.mark.usefixtures("backend")
async def test_live_backup_restores_every_acknowledged_message(
    tmp_path: Path, database_url: str, free_port: int, backend: str
) -> None:
    env = server_env(tmp_path, database_url)
    backup_dir = tmp_path / "backup"
    acked: list[str] = []
    stop = asyncio.Event()
    under_way = asyncio.Event()  # the senders have 50 acknowledged messages
    async with running_server(tmp_path, database_url, free_port) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            alice = await make_user(http, "alice")
            bob = await make_user(http, "bob")
            group = await open_group(http, alice, [bob])
            upload = await http.post(
                "/api/v1/uploads", files={"file": ("p.png", png_bytes(), "image/png")}, headers=alice.headers
            )
            assert upload.status_code == 201, upload.text
            picture = upload.json()["attachment"]
            await send(http, alice, group["id"], "with picture", attachment_ids=[picture["id"]])

            async def sender(index: int) -> None:
                user = alice if index % 2 else bob
                n = 0
                while not stop.is_set():
                    message = await send(http, user, group["id"], f"sender {index} message {n}")
                    acked.append(message["id"])
                    if len(acked) >= 50:
                        under_way.set()
                    n += 1

            tasks = [asyncio.create_task(sender(i)) for i in range(SENDERS)]
            try:
                await asyncio.wait_for(under_way.wait(), COMMAND_TIMEOUT)
                acknowledged_before = list(acked)
                code, out = await parley(env, "backup", str(backup_dir))
                assert code == 0, out
                during = len(acked) - len(acknowledged_before)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
    assert during > 0, "the senders kept writing while the backup ran"
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"] == ("sqlite" if backend == "sqlite" else "postgresql")
    assert any(name.startswith("media/") for name in manifest["files"])

    # Restore into a new data directory and a new database.
    async with restore_target(tmp_path, backend) as (restored_root, restored_url):
        restored_env = server_env(restored_root, restored_url)
        code, out = await parley(restored_env, "restore", str(backup_dir))
        assert code == 0, out
        # A second restore would overwrite data: refused without --force.
        code, out = await parley(restored_env, "restore", str(backup_dir))
        assert code == 1 and "--force" in out
        code, out = await parley(restored_env, "restore", "--force", str(backup_dir))
        assert code == 0, out
        async with running_server(restored_root, restored_url, free_port) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                assert (await http.get("/readyz")).status_code == 200
                login = await http.post("/api/v1/auth/login", json={"username": "alice", "password": TEST_PASSWORD})
                assert login.status_code == 200, login.text
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                present: set[str] = set()
                after = 0
                while True:
                    page = await http.get(
                        f"/api/v1/conversations/{group['id']}/changes",
                        params={"after_seq": after},
                        headers=headers,
                    )
                    assert page.status_code == 200, page.text
                    body: dict[str, Any] = page.json()
                    present.update(m["id"] for m in body["messages"])
                    if not body["has_more"]:
                        break
                    after = body["next_after_seq"]
                missing = set(acknowledged_before) - present
                assert not missing, f"{len(missing)} acknowledged messages missing"
                image = await http.get(f"/api/v1/attachments/{picture['id']}/original", headers=headers)
                assert image.status_code == 200 and image.content == png_bytes()


async def test_restore_verifies_the_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "PARLEY_DATA_DIR": str(data),
        "PARLEY_DATABASE_URL": f"sqlite:///{data / 'parley.db'}",
        "PARLEY_SECRET_KEY": "s" * 48,
    }
    code, out = await parley(env, "migrate")
    assert code == 0, out
    (data / "media" / "attachments").mkdir(parents=True)
    (data / "media" / "attachments" / "blob").write_bytes(b"some bytes")
    backup_dir = tmp_path / "backup"
    code, out = await parley(env, "backup", str(backup_dir))
    assert code == 0, out
    code, out = await parley(env, "backup", str(backup_dir))
    assert code == 1 and "not empty" in out
    elsewhere = {**env, "PARLEY_DATA_DIR": str(tmp_path / "other"),
                 "PARLEY_DATABASE_URL": f"sqlite:///{tmp_path / 'other' / 'parley.db'}"}
    # A damaged file is found before anything is restored.
    (backup_dir / "media" / "attachments" / "blob").write_bytes(b"some bytez")
    code, out = await parley(elsewhere, "restore", str(backup_dir))
    assert code == 1 and "checksum" in out
    assert not (tmp_path / "other" / "parley.db").exists()
    (backup_dir / "media" / "attachments" / "blob").write_bytes(b"some bytes")
    (backup_dir / "manifest.json").unlink()
    code, out = await parley(elsewhere, "restore", str(backup_dir))
    assert code == 1 and "manifest" in out
    code, out = await parley(elsewhere, "restore", str(tmp_path / "does-not-exist"))
    assert code == 1


@pytest.mark.usefixtures("backend")
async def test_a_backup_of_an_s3_deployment_carries_its_blobs(
    tmp_path: Path, database_url: str, free_port: int, backend: str, s3_endpoint: str  # noqa: F811
) -> None:
    """Media on S3: the backup holds every object of the bucket (attachments, their
    variants, a profile picture), and a restore puts them into the restoring server's own,
    empty bucket — from which the restored server serves them."""
    bucket = new_bucket(s3_endpoint)
    s3 = {"media_backend": "s3", "s3_bucket": bucket, "s3_endpoint_url": s3_endpoint, "s3_prefix": "parley"}
    backup_dir = tmp_path / "backup"
    async with running_server(tmp_path, database_url, free_port, **s3) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            alice, bob = await make_user(http, "alice"), await make_user(http, "bob")
            group = await open_group(http, alice, [bob])
            picture = await upload_ok(http, alice, png_bytes(), "p.png")
            await send(http, alice, group["id"], "with picture", attachment_ids=[picture["id"]])
            me_png = {"file": ("me.png", png_bytes(96, 96), "image/png")}
            avatar = await http.put("/api/v1/users/me/avatar", files=me_png, headers=bob.headers)
            assert avatar.status_code == 200, avatar.text
            avatar_url = avatar.json()["user"]["avatar"]["large"]
            avatar_bytes = (await http.get(avatar_url)).content
            code, out = await parley(server_env(tmp_path, database_url, **s3), "backup", str(backup_dir))
            assert code == 0, out
    in_bucket = objects_in(s3_endpoint, bucket)
    assert any(k.startswith("parley/attachments/") for k in in_bucket)
    assert any(k.startswith("parley/avatars/") for k in in_bucket)
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["media"] == "s3" and manifest["blobs"] == len(in_bucket)
    assert sorted(n for n in manifest["files"] if n.startswith("media/")) == [
        "media/" + k.removeprefix("parley/") for k in in_bucket
    ]
    assert not (tmp_path / "data" / "media").exists()  # nothing came from a local directory

    # Restore into a new database and a new, empty bucket.
    restored_s3 = s3 | {"s3_bucket": new_bucket(s3_endpoint)}
    async with restore_target(tmp_path, backend) as (restored_root, restored_url):
        restored_env = server_env(restored_root, restored_url, **restored_s3)
        code, out = await parley(restored_env, "restore", str(backup_dir))
        assert code == 0, out
        assert objects_in(s3_endpoint, restored_s3["s3_bucket"]) == in_bucket
        # A database that looks empty, but a bucket that holds the backup's blobs: refused, as
        # a local media file that exists is, before anything is written.
        elsewhere = tmp_path / "elsewhere"
        with pytest.raises(BackupError, match=r"media/\S+ is in the media store: pass --force"):
            await restore(
                conftest.test_settings(elsewhere, restored_url, **restored_s3),
                backup_dir,
                force=False,
                has_data=nothing_there,
                progress=Progress(io.StringIO()),
            )
        assert not elsewhere.exists()

        async with running_server(restored_root, restored_url, free_port, **restored_s3) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                login = await http.post("/api/v1/auth/login", json={"username": "alice", "password": TEST_PASSWORD})
                assert login.status_code == 200, login.text
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                image = await http.get(f"/api/v1/attachments/{picture['id']}/original", headers=headers)
                assert image.status_code == 200 and image.content == png_bytes()
                thumb = await http.get(f"/api/v1/attachments/{picture['id']}/thumb320", headers=headers)
                assert thumb.status_code == 200
                again = await http.get(avatar_url)
                assert again.status_code == 200 and again.content == avatar_bytes


async def nothing_there() -> bool:
    return False
