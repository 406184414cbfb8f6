"""Exports (DESIGN §6.4) on both databases: a personal export holds exactly the user's own
data (and nothing of others' private data), progress as ``export.updated`` events, signed
expiring downloads, the daily limit under a concurrent burst, conversation exports for
admins only, expiry, and bad input."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from parley.app import create_app
from parley.clock import utcnow
from parley.config import Settings
from parley.container import Container
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.attachment_helpers import pdf_bytes, upload_ok
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.container_events import EventLog
from tests.support.lifecycle_helpers import export_ready

pytestmark = pytest.mark.usefixtures("backend")


async def request_export(client: httpx.AsyncClient, user: UserHandle, path: str = "/api/v1/users/me/export") -> dict[str, Any]:
    response = await client.post(path, headers=user.headers)
    assert response.status_code == 202, response.text
    export: dict[str, Any] = response.json()["export"]
    assert export["status"] == "queued" and export["download_url"] is None
    return export


async def download(client: httpx.AsyncClient, url: str) -> zipfile.ZipFile:
    response = await client.get(url)  # no Authorization: the link is the credential
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    return zipfile.ZipFile(io.BytesIO(response.content))


def read_json(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_personal_export_holds_exactly_the_users_data(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    direct = await open_direct(client, alice, bob)
    group = await open_group(client, bob, [alice, carol], name="Bob's team")
    secret_of_bob = await send(client, bob, direct["id"], "bob's private words")
    await send(client, carol, group["id"], "carol's words")
    mine = [
        await send(client, alice, direct["id"], "hello <script>alert(1)</script>"),
        await send(client, alice, group["id"], "first draft"),
    ]
    edited = await client.patch(
        f"/api/v1/messages/{mine[1]['id']}", json={"content": "final text"}, headers=alice.headers
    )
    assert edited.status_code == 200
    deleted = await send(client, alice, group["id"], "regretted")
    assert (await client.delete(f"/api/v1/messages/{deleted['id']}", headers=alice.headers)).status_code == 200
    file = await upload_ok(client, alice, pdf_bytes(), "report.pdf")
    with_file = await send(client, alice, group["id"], "see attached", attachment_ids=[file["id"]])
    mine.append(with_file)
    reacted = await client.put(
        f"/api/v1/messages/{secret_of_bob['id']}/reactions/👍", headers=alice.headers
    )
    assert reacted.status_code in (200, 201, 204), reacted.text
    await client.post("/api/v1/contacts", json={"user_id": carol.id}, headers=alice.headers)
    log = EventLog(container)

    export = await request_export(client, alice)
    ready = await export_ready(log, export["id"])

    assert ready["status"] == "ready" and ready["progress"] == 100
    progress = [
        e.data["export"]["progress"]
        for e in log.of("export.updated")
        if e.data["export"]["status"] == "running"
    ]
    assert progress and progress == sorted(progress)
    assert all(e.user_ids == (alice.id,) for e in log.of("export.updated"))
    # The GET answers the same, with a signed link.
    got = (await client.get(f"/api/v1/users/me/exports/{export['id']}", headers=alice.headers)).json()
    assert got["export"]["status"] == "ready"
    archive = await download(client, got["export"]["download_url"])
    names = set(archive.namelist())
    assert {
        "profile.json", "sessions.json", "contacts.json", "conversations.json",
        "messages.json", "reactions.json", "uploads.json", "index.html",
    } <= names
    profile = read_json(archive, "profile.json")
    assert profile["username"] == "alice" and profile["id"] == alice.id
    sent = read_json(archive, "messages.json")
    assert sorted(m["id"] for m in sent) == sorted(m["id"] for m in mine)
    assert {m["sender_id"] for m in sent} == {alice.id}
    assert "final text" in [m["content"] for m in sent]
    conversations = read_json(archive, "conversations.json")
    assert {c["id"] for c in conversations} == {direct["id"], group["id"]}
    assert [r["emoji"] for r in read_json(archive, "reactions.json")] == ["👍"]
    assert [c["username"] for c in read_json(archive, "contacts.json")["contacts"]] == ["carol"]
    uploads = read_json(archive, "uploads.json")
    assert [u["id"] for u in uploads] == [file["id"]]
    assert archive.read(uploads[0]["file"]) == pdf_bytes()
    assert len(read_json(archive, "sessions.json")) == 1
    # Nothing of other people's private data: no text of theirs anywhere in the archive.
    everything = b"".join(archive.read(name) for name in names)
    for foreign in (b"bob's private words", b"carol's words", b"regretted", b"first draft"):
        assert foreign not in everything
    page = archive.read("index.html").decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    # The link is the owner's: others cannot see the export, and a forged link fails.
    other = await client.get(f"/api/v1/users/me/exports/{export['id']}", headers=bob.headers)
    assert other.status_code == 404
    parts = urlsplit(got["export"]["download_url"])
    query = parse_qs(parts.query)
    forged = await client.get(parts.path, params={"exp": query["exp"][0], "sig": "A" * 22})
    assert forged.status_code in (403, 404) and forged.status_code != 500
    later = str(int(query["exp"][0]) + 3600)
    assert (await client.get(parts.path, params={"exp": later, "sig": query["sig"][0]})).status_code in (403, 404)
    assert (await client.get(parts.path)).status_code in (403, 404)
    listed = (await client.get("/api/v1/users/me/exports", headers=alice.headers)).json()
    assert [e["id"] for e in listed["exports"]] == [export["id"]]


@pytest.mark.settings(exports_per_day=2, **NO_SEND_LIMITS)
async def test_export_limit_holds_under_a_concurrent_burst(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    responses = await asyncio.gather(
        *(client.post("/api/v1/users/me/export", headers=alice.headers) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202, 202] + [429] * 6, [r.text for r in responses]
    limited = next(r for r in responses if r.status_code == 429)
    assert code(limited) == "RATE_LIMITED" and limited.json()["error"]["retry_after"] > 0
    # Another user is not affected.
    bob = await make_user(client, "bob")
    assert (await client.post("/api/v1/users/me/export", headers=bob.headers)).status_code == 202


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_conversation_export_for_admins(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Plans & <stuff>")
    direct = await open_direct(client, alice, bob)
    texts = [await send(client, bob if i % 2 else alice, group["id"], f"line {i}") for i in range(7)]
    path = f"/api/v1/conversations/{group['id']}/export"
    assert (await client.post(path, headers=bob.headers)).status_code == 403
    assert (await client.post(f"/api/v1/conversations/{direct['id']}/export", headers=alice.headers)).status_code == 403
    carol = await make_user(client, "carol")
    assert (await client.post(path, headers=carol.headers)).status_code == 404
    assert (await client.post("/api/v1/conversations/nope/export", headers=alice.headers)).status_code == 404
    log = EventLog(container)
    export = await request_export(client, alice, path)
    assert export["kind"] == "conversation" and export["conversation_id"] == group["id"]
    ready = await export_ready(log, export["id"])
    archive = await download(client, ready["download_url"])
    exported = read_json(archive, "messages.json")
    assert [m["id"] for m in exported if m["kind"] == "text"] == [m["id"] for m in texts]
    info = read_json(archive, "conversation.json")
    assert {m["username"] for m in info["members"]} == {"alice", "bob"}
    page = archive.read("index.html").decode()
    assert "Plans &amp; &lt;stuff&gt;" in page and "line 6" in page


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_exports_expire(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    log = EventLog(container)
    export = await request_export(client, alice)
    ready = await export_ready(log, export["id"])
    key = f"exports/{export['id']}.zip"
    assert await container.blobs.exists(key)
    assert await container.exports.sweep() == 0  # not yet
    assert await container.exports.sweep(now=utcnow() + timedelta(days=8)) == 1
    assert not await container.blobs.exists(key)
    response = await client.get(f"/api/v1/users/me/exports/{export['id']}", headers=alice.headers)
    assert response.status_code == 404
    assert (await client.get(ready["download_url"])).status_code == 404


async def test_export_bad_input(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    for export_id in ("x", "0" * 26, "01ARZ3NDEKTSV4RRFFQ69G5FA%00", "9" * 400):
        response = await client.get(f"/api/v1/users/me/exports/{export_id}", headers=alice.headers)
        assert response.status_code in (400, 404), response.text
    response = await client.get(
        "/api/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV/download?exp=9999999999999999999&sig=%ED%A0%80%00"
    )
    assert response.status_code in (400, 403, 404), response.text
    response = await client.get(
        "/api/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV/download", params={"exp": "x" * 50, "sig": "y"}
    )
    assert response.status_code in (400, 403, 404), response.text
    response = await client.post("/api/v1/users/me/export")
    assert response.status_code == 401


@pytest.fixture
def redis_settings(tmp_path: Path, database_url: str, redis_prefix: str) -> Settings:
    from tests.conftest import test_settings
    from tests.support.redis_fixtures import REDIS_URL

    return test_settings(
        tmp_path, database_url, redis_url=REDIS_URL, redis_key_prefix=redis_prefix, **NO_SEND_LIMITS
    )


async def test_export_runs_as_a_job_on_redis_streams(redis_settings: Settings) -> None:
    """With Redis the build job goes through Redis Streams (any node may build it), and its
    progress events reach the requester through the bus."""
    application = create_app(redis_settings)
    async with application.router.lifespan_context(application):
        container: Container = application.state.parley
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50003))
        async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
            alice = await make_user(client, "alice")
            log = EventLog(container)
            export = await request_export(client, alice)
            ready = await export_ready(log, export["id"])
            assert ready["status"] == "ready"
            archive = await download(client, ready["download_url"])
            assert read_json(archive, "profile.json")["username"] == "alice"


async def test_an_export_deleted_while_building_leaves_no_archive(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user is erased while their export is being built: the finished archive must not
    stay in the media store with no row to lead a sweep to it."""
    alice = await make_user(client, "alice")

    async def no_job(kind: str, payload: Any = None, **options: Any) -> str:
        return "held"  # the test runs the build itself, at the moment it chooses

    monkeypatch.setattr(container.exports, "_jobs", type("Held", (), {"enqueue": staticmethod(no_job)})())
    export = await request_export(client, alice)
    writer = container.exports._writer
    personal = writer.personal

    async def erased_meanwhile(sink: Any, user_id: str, progress: Any) -> None:
        await personal(sink, user_id, progress)
        await container.exports.delete_for_user(user_id)

    monkeypatch.setattr(writer, "personal", erased_meanwhile)
    await container.exports.build(export["id"])
    assert not await container.blobs.exists(f"exports/{export['id']}.zip")
