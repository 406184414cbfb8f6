"""End to end, on a real server over real sockets (DESIGN §6.1 "done when"): two SDK
clients and a second device in an encrypted DM, an encrypted file, an edit, realtime
delivery; a 20-member encrypted group where a removed member cannot read what follows;
then every byte the server wrote — the SQLite file and its WAL or PostgreSQL's tables, the
media directory, the server's log — is searched for the plaintexts, and none is there."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from parley.client import CallError, ParleyClient
from parley.store.db import Database
from parley.store.tables.catalog import complete_metadata
from tests.support.gateway_helpers import login, new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")


class Plaintexts:
    def __init__(self) -> None:
        self.all: list[str] = []

    def __call__(self, label: str) -> str:
        value = f"PLAINTEXT-{label}-{secrets.token_hex(6)}"
        self.all.append(value)
        return value


def texts(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in page["messages"] if m["kind"] == "text"]


async def raw_message(client: ParleyClient, message_id: str) -> dict[str, Any]:
    """As the server serves it, without decrypting (what a leak would expose)."""
    return dict((await client.request("GET", f"/api/v1/messages/{message_id}"))["message"])


async def test_encrypted_dm_group_and_no_plaintext_on_the_server(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    secret = Plaintexts()
    states = tmp_path / "clients"  # the clients' own state, not the server's
    async with running_server(tmp_path, database_url, free_port) as server:
        base = server.base_url
        clients: list[ParleyClient] = []
        try:
            alice = await new_user(base, "alice")
            bob = await new_user(base, "bob")
            clients += [alice, bob]
            await alice.enable_e2ee(states / "alice")
            await bob.enable_e2ee(states / "bob")
            state_files = list((states / "alice").glob("device-*.json"))
            assert state_files and stat.S_IMODE(state_files[0].stat().st_mode) == 0o600
            assert stat.S_IMODE((states / "alice").stat().st_mode) == 0o700

            # --- a direct conversation
            dm = await alice.create_direct(bob.user_id, encrypted=True)
            assert dm["encrypted"] is True
            bob_log = await open_log(bob)
            first = await alice.send_message(dm["id"], secret("dm-1"))
            assert first["content"] == secret.all[-1] and first["decrypted"]
            seen = await bob_log.wait_for(
                lambda events: any(
                    e.type == "message.created" and (e.message or {}).get("id") == first["id"] for e in events
                )
            )
            pushed = next(e.message for e in seen if e.message and e.message.get("id") == first["id"])
            assert pushed is not None and pushed["content"] == secret.all[0] and pushed["decrypted"]
            # Over the socket too: message.send with ciphertext; a bad envelope is an error frame.
            assert bob.e2ee is not None
            sealed = await bob.e2ee.encrypt(dm["id"], secret("dm-2"))
            acked = await bob_log.session.call("message.send", {"conversation_id": dm["id"], **sealed})
            reply = acked["message"]
            assert reply["ciphertext"] == sealed["ciphertext"] and reply["content"] == ""
            with pytest.raises(CallError) as refused:
                await bob_log.session.call(
                    "message.send",
                    {"conversation_id": dm["id"], **sealed, "e2ee": sealed["e2ee"] | {"index": -1}},
                )
            assert refused.value.code == "VALIDATION_ERROR"
            with pytest.raises(CallError) as plain_refused:
                await bob_log.session.call("message.send", {"conversation_id": dm["id"], "content": "clear"})
            assert plain_refused.value.code == "ENCRYPTION_REQUIRED"
            await bob_log.close()
            read = texts(await alice.history(dm["id"]))
            assert [m["content"] for m in read] == secret.all[:2]
            assert all(m["decrypted"] for m in read) and read[1]["id"] == reply["id"]

            # Alice's second device: it reads what is sent after it exists.
            phone = await login(base, "alice", device="phone")
            clients.append(phone)
            await phone.enable_e2ee(states / "alice-phone")
            later = await bob.send_message(dm["id"], secret("dm-3"))
            on_phone = {m["id"]: m for m in texts(await phone.history(dm["id"]))}
            assert on_phone[later["id"]]["content"] == secret.all[2]
            assert on_phone[first["id"]]["decrypted"] is False  # before it existed (no backup)
            from_phone = await phone.send_message(dm["id"], secret("dm-4"))
            assert {m["id"]: m["content"] for m in texts(await alice.history(dm["id"]))}[from_phone["id"]] == secret.all[3]

            # An encrypted file, and an edit.
            content = secret("file-contents").encode()
            sent_file = await alice.send_file(dm["id"], content, "notes.txt", "text/plain", text=secret("file-caption"))
            on_bob = {m["id"]: m for m in texts(await bob.history(dm["id"]))}[sent_file["id"]]
            assert on_bob["content"] == secret.all[-1] and on_bob["e2ee_attachments"][0]["name"] == "notes.txt"
            assert await bob.download_file(on_bob) == content
            edited_text = secret("edited")
            await alice.edit_message(first["id"], edited_text)
            assert (await bob.message(first["id"]))["content"] == edited_text

            # Plain conversations are unchanged (and searchable), encrypted ones are not.
            plain = await alice.create_group("plain", [bob.user_id])
            await alice.send_message(plain["id"], "ordinary words")
            assert (await bob.search("ordinary"))["results"]
            for word in secret.all[:2]:
                assert (await bob.search(word))["results"] == []

            # --- a 20-member group; one member removed mid-way
            owner = alice
            members = [bob] + [await new_user(base, f"member{i:02d}") for i in range(18)]
            clients += members[1:]
            for i, member in enumerate(members[1:]):
                await member.enable_e2ee(states / f"member{i:02d}")
            group = await owner.create_group("secret group", [m.user_id for m in members], encrypted=True)
            assert group["member_count"] == 20
            hello = await owner.send_message(group["id"], secret("group-1"))
            for member in members:
                [message] = [m for m in texts(await member.history(group["id"])) if m["id"] == hello["id"]]
                assert message["content"] == secret.all[-1], member.user_id
            speaker, removed = members[4], members[6]
            said = await speaker.send_message(group["id"], secret("group-2"))
            for member in (owner, members[0], removed, members[10]):
                found = {m["id"]: m["content"] for m in texts(await member.history(group["id"]))}
                assert found[said["id"]] == secret.all[-1]
            await owner.remove_member(group["id"], removed.user_id)
            after = await owner.send_message(group["id"], secret("group-3-after-removal"))
            after_speaker = await speaker.send_message(group["id"], secret("group-4-after-removal"))
            for member in (members[0], members[10], speaker):
                found = {m["id"]: m for m in texts(await member.history(group["id"]))}
                assert found[after["id"]]["content"] == secret.all[-2]
                assert found[after_speaker["id"]]["content"] == secret.all[-1]
            assert removed.e2ee is not None
            await removed.e2ee.sync_inbox()
            old_epoch = (await raw_message(owner, hello["id"]))["e2ee"]["session_id"]
            for message_id in (after["id"], after_speaker["id"]):
                leaked = await raw_message(owner, message_id)
                assert leaked["content"] == ""
                assert message_id != after["id"] or leaked["e2ee"]["session_id"] != old_epoch
                attempt = await removed.e2ee.decrypt_message(leaked)
                assert attempt["decrypted"] is False and attempt["content"] == ""
            before = await removed.e2ee.decrypt_message(await raw_message(owner, hello["id"]))
            assert before["decrypted"] is True  # what it had, it keeps (docs/e2ee.md)
        finally:
            for client in clients:
                await client.aclose()
        server_log = server.log()
    assert "Application startup complete" in server_log  # the log was captured
    await assert_nowhere_on_the_server(tmp_path, states, database_url, secret.all)


async def assert_nowhere_on_the_server(
    tmp_path: Path, states: Path, database_url: str, plaintexts: list[str]
) -> None:
    needles = [p.encode() for p in plaintexts]
    scanned = 0
    for path in tmp_path.rglob("*"):
        if not path.is_file() or states in path.parents:
            continue
        data = path.read_bytes()
        scanned += len(data)
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path}"
    assert scanned > 0
    if database_url.startswith("sqlite"):
        assert any(p.name.startswith("parley.db") for p in tmp_path.rglob("parley.db*"))
        return
    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            rows = 0
            for table in complete_metadata().sorted_tables:
                for (row,) in await conn.execute(text(f'SELECT CAST(t AS text) FROM "{table.name}" t')):
                    rows += 1
                    for plaintext in plaintexts:
                        assert plaintext not in row, f"{plaintext!r} found in table {table.name}"
            assert rows > 0
    finally:
        await db.dispose()
