"""Retention (DESIGN §6.4) on both databases: the site policy and per-conversation periods,
the legal hold, the sweep deleting exactly the expired prefix (attachments, index entries,
archives), clients learning of it through ``changes`` and ``messages.expired``, bad input,
and concurrent sweeps and sends."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.clock import utcnow
from parley.container import Container
from parley.lifecycle.archive import ARCHIVE_PREFIX, archive_key, read_archive
from parley.media.blobstore import read_all
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.attachment_helpers import blob_keys, png_bytes, stored, upload_ok
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.container_events import EventLog
from tests.support.lifecycle_helpers import backdate_through, stored_message_ids

pytestmark = pytest.mark.usefixtures("backend")


async def changes(
    client: httpx.AsyncClient, user: UserHandle, conversation_id: str, after: int = 0
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/conversations/{conversation_id}/changes",
        params={"after_seq": after},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def team(client: httpx.AsyncClient) -> tuple[UserHandle, UserHandle, dict[str, Any]]:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    return alice, bob, group


@pytest.mark.settings(retention_days=30, retention_archive=True, **NO_SEND_LIMITS)
async def test_site_policy_deletes_exactly_the_expired_prefix(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob, group = await team(client)
    old = [await send(client, alice, group["id"], f"ancient zebra {i}") for i in range(5)]
    new = [await send(client, bob, group["id"], f"recent zebra {i}") for i in range(3)]
    await backdate_through(container, group["id"], old[-1]["seq"], utcnow() - timedelta(days=31))
    log = EventLog(container)
    before = await changes(client, bob, group["id"])

    report = await container.retention.run()

    # The old messages and the group's creation before them: seqs 1..through.
    assert report.messages_deleted == old[-1]["seq"]
    remaining = await stored_message_ids(container, group["id"])
    assert not {m["id"] for m in old} & set(remaining)
    assert {m["id"] for m in new} <= set(remaining)
    # Clients learn it: the feed and the event carry the seq up to which all is gone.
    through = old[-1]["seq"]
    page = await changes(client, bob, group["id"])
    assert page["expired_through_seq"] == through
    assert page["last_seq"] == before["last_seq"]
    view = (await client.get(f"/api/v1/conversations/{group['id']}", headers=bob.headers)).json()
    assert view["conversation"]["expired_through_seq"] == through
    expired = log.of("messages.expired")
    assert [e.data["expired_through_seq"] for e in expired] == [through]
    assert expired[0].conversation_id == group["id"]
    # History and search no longer have them.
    history = (
        await client.get(f"/api/v1/conversations/{group['id']}/messages", headers=bob.headers)
    ).json()
    assert not {m["id"] for m in history["messages"]} & {m["id"] for m in old}
    hits = (await client.get("/api/v1/search", params={"q": "zebra"}, headers=bob.headers)).json()
    contents = [h["message"]["content"] for h in hits["results"]]
    assert contents and all(c.startswith("recent") for c in contents)
    # The archive holds them, in order, before they were deleted.
    assert min(m["seq"] for m in page["messages"]) > through
    assert report.archives_written == 1
    blob = await read_all(container.blobs, archive_key(group["id"], 1, through))
    archived = read_archive(blob)
    assert [r["id"] for r in archived if r["kind"] == "text"] == [m["id"] for m in old]
    # A second run finds nothing more.
    assert (await container.retention.run()).messages_deleted == 0


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_no_policy_keeps_everything_and_override_applies(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob, group = await team(client)
    other = await open_group(client, alice, [bob], name="Other")
    kept = await send(client, alice, other["id"], "kept forever")
    gone = await send(client, alice, group["id"], "short lived")
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/retention",
        json={"retention_days": 7},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["conversation"]["retention_days"] == 7
    # Everyone sees the settings change in the timeline.
    events = [
        m["system_event"] for m in (await changes(client, bob, group["id"]))["messages"]
        if m["kind"] == "system"
    ]
    assert {"retention_days": 7} in [e.get("changes") for e in events]

    report = await container.retention.run(as_of=utcnow() + timedelta(days=8))

    remaining = await stored_message_ids(container, group["id"])
    assert gone["id"] not in remaining
    assert kept["id"] in await stored_message_ids(container, other["id"])
    assert report.messages_deleted == gone["seq"] + 1  # the group so far and the change
    # Back to the site policy (none): nothing more goes.
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/retention",
        json={"retention_days": None},
        headers=alice.headers,
    )
    assert response.json()["conversation"]["retention_days"] is None
    survivor = await send(client, alice, group["id"], "after reset")
    await container.retention.run(as_of=utcnow() + timedelta(days=400))
    assert survivor["id"] in await stored_message_ids(container, group["id"])


@pytest.mark.settings(retention_days=1, **NO_SEND_LIMITS)
async def test_legal_hold_suspends_deletion(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob, group = await team(client)
    message = await send(client, alice, group["id"], "evidence")
    # Only site administrators place holds; members get 403, strangers' ids 404.
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/legal-hold",
        json={"legal_hold": True},
        headers=alice.headers,
    )
    assert response.status_code == 403 and code(response) == "FORBIDDEN"
    await container.accounts.set_admin(bob.id, True)
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/legal-hold",
        json={"legal_hold": True},
        headers=bob.headers,
    )
    assert response.status_code == 204, response.text
    later = utcnow() + timedelta(days=10)
    report = await container.retention.run(as_of=later)
    assert report.held == 1 and report.messages_deleted == 0
    assert message["id"] in await stored_message_ids(container, group["id"])
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/legal-hold",
        json={"legal_hold": False},
        headers=bob.headers,
    )
    assert response.status_code == 204
    await container.retention.run(as_of=later)
    assert message["id"] not in await stored_message_ids(container, group["id"])
    response = await client.put(
        "/api/v1/conversations/01ARZ3NDEKTSV4RRFFQ69G5FAV/legal-hold",
        json={"legal_hold": True},
        headers=bob.headers,
    )
    assert response.status_code == 404


@pytest.mark.settings(retention_days=1, **NO_SEND_LIMITS)
async def test_attachments_of_expired_messages_are_removed(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob, group = await team(client)
    attachment = await upload_ok(client, alice, png_bytes(), "picture.png")
    await send(client, alice, group["id"], "with a file", attachment_ids=[attachment["id"]])
    keys = await blob_keys(container, attachment)
    assert all(await stored(container, keys))
    report = await container.retention.run(as_of=utcnow() + timedelta(days=2))
    assert report.attachments_released == 1
    await container.attachments.sweep()
    assert not any(await stored(container, keys))
    response = await client.get(f"/api/v1/attachments/{attachment['id']}/original", headers=bob.headers)
    assert response.status_code == 404


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_retention_setting_bad_input(client: httpx.AsyncClient) -> None:
    alice, bob, group = await team(client)
    direct = await open_direct(client, alice, bob)
    url = f"/api/v1/conversations/{group['id']}/retention"
    for body in (
        {"retention_days": 0},
        {"retention_days": -1},
        {"retention_days": 36_501},
        {"retention_days": 2**70},
        {"retention_days": "7\x00"},
        {"retention_days": "\ud800"},
        {"retention_days": 1.5},
        {},
        {"retention_days": 7, "extra": 1},
    ):
        response = await client.put(
            url,
            content=json.dumps(body),  # ASCII escapes: the lone surrogate travels as JSON spells it
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert response.status_code == 400, (body, response.text)
        assert code(response) == "VALIDATION_ERROR"
    response = await client.put(url, content=b'{"retention_days": 1e999}', headers={**alice.headers, "content-type": "application/json"})
    assert response.status_code in (400, 422)
    # Members who are not admins, direct conversations, and outsiders.
    response = await client.put(url, json={"retention_days": 3}, headers=bob.headers)
    assert response.status_code == 403
    response = await client.put(
        f"/api/v1/conversations/{direct['id']}/retention",
        json={"retention_days": 3},
        headers=alice.headers,
    )
    assert response.status_code == 403
    carol = await make_user(client, "carol")
    response = await client.put(url, json={"retention_days": 3}, headers=carol.headers)
    assert response.status_code == 404
    response = await client.put(
        "/api/v1/conversations/not-an-id/retention", json={"retention_days": 3}, headers=alice.headers
    )
    assert response.status_code == 404
    response = await client.put(
        f"/api/v1/conversations/{group['id']}/legal-hold", json={"legal_hold": "maybe"},
        headers=alice.headers,
    )
    assert response.status_code == 400


@pytest.mark.settings(retention_days=1, retention_batch_size=3, **NO_SEND_LIMITS)
async def test_concurrent_sweeps_and_sends(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob, group = await team(client)
    old = [await send(client, alice, group["id"], f"old {i}") for i in range(10)]
    await backdate_through(container, group["id"], old[-1]["seq"], utcnow() - timedelta(days=2))
    system_before = old[0]["seq"] - 1

    async def sender(i: int) -> dict[str, Any]:
        return await send(client, bob, group["id"], f"new {i}")

    results = await asyncio.gather(
        container.retention.run(),
        container.retention.run(),
        container.retention.run(),
        *(sender(i) for i in range(10)),
    )
    reports = results[:3]
    fresh = results[3:]
    remaining = set(await stored_message_ids(container, group["id"]))
    # The old ones, and the system messages older than them (the group's creation), went
    # once in total; nothing sent during the sweep did.
    deleted = sum(r.messages_deleted for r in reports)  # type: ignore[union-attr]
    assert not remaining & {m["id"] for m in old}
    assert {m["id"] for m in fresh} <= remaining
    assert deleted == len(old) + system_before
    page = await changes(client, bob, group["id"])
    assert page["expired_through_seq"] == old[-1]["seq"]


def test_cli_retention_run_as_of(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from parley.cli import main
    from parley.container import build_container
    from tests.conftest import test_settings

    settings = test_settings(tmp_path, database_url, retention_days=5)

    async def populate() -> tuple[str, str]:
        container = build_container(settings)
        try:
            user = await container.accounts.register("dora", "a perfectly fine passphrase")
            conversation = await container.conversations.create_group(user.id, "Solo", [])
            message = await container.messages.send(user.id, conversation.id, "bye soon")
            return conversation.id, message.message.id
        finally:
            await container.close()

    conversation_id, message_id = asyncio.run(populate())
    for name, value in {
        "PARLEY_DATA_DIR": str(settings.data_dir),
        "PARLEY_DATABASE_URL": database_url,
        "PARLEY_SECRET_KEY": "test-secret-" + "x" * 40,
        "PARLEY_RETENTION_DAYS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    as_of = (utcnow() + timedelta(days=1)).date().isoformat()
    assert main(["retention", "run", "--as-of", as_of]) == 0
    assert json.loads(capsys.readouterr().out)["messages_deleted"] == 0
    as_of = (utcnow() + timedelta(days=6)).isoformat()
    assert main(["retention", "run", "--as-of", as_of]) == 0
    assert json.loads(capsys.readouterr().out)["messages_deleted"] >= 1
    assert main(["retention", "hold", conversation_id]) == 0
    assert json.loads(capsys.readouterr().out)["legal_hold"] is True
    with pytest.raises(SystemExit):
        main(["retention", "run", "--as-of", "yesterday"])

    async def remaining() -> list[str]:
        container = build_container(settings)
        try:
            return await stored_message_ids(container, conversation_id)
        finally:
            await container.close()

    assert message_id not in asyncio.run(remaining())
    assert ARCHIVE_PREFIX
