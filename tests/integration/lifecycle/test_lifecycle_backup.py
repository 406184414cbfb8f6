"""Backup and restore (DESIGN §6.4) on both databases: a backup taken while ten senders
write restores into a new data directory and a new database, where every message
acknowledged before the backup started is present, the media came along and the server
starts; restore verifies checksums and refuses to overwrite without --force."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.config import normalise_database_url
from tests.conftest import PG_ADMIN_URL, TEST_PASSWORD, make_user
from tests.support.attachment_helpers import png_bytes
from tests.support.chat_helpers import open_group, send
from tests.support.gateway_helpers import running_server, server_env

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
    restored_root = tmp_path / "restored"
    restored_root.mkdir()
    fresh: FreshPostgres | None = None
    if backend == "sqlite":
        restored_url = f"sqlite:///{restored_root / 'data' / 'parley.db'}"
    else:
        fresh = FreshPostgres()
        await fresh.run(f'CREATE DATABASE "{fresh.name}"')
        restored_url = fresh.url
    try:
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
    finally:
        if fresh is not None:
            await fresh.run(f'DROP DATABASE IF EXISTS "{fresh.name}" WITH (FORCE)')


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
