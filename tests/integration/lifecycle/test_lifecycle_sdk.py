"""The SDK and data lifecycle: the tracker announces retention's removals after a fill
(live, after a gap, or when only ``expired_through_seq`` moved while away), and the REST
client's retention, export and erasure calls against the app on both databases."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from parley.client import ApiError, ParleyClient
from parley.client.tracker import RealtimeEvent, Tracker
from parley.clock import utcnow
from parley.container import Container
from tests.conftest import NO_SEND_LIMITS, TEST_PASSWORD
from tests.support.container_events import EventLog
from tests.support.lifecycle_helpers import export_ready


def test_tracker_announces_expiry_found_at_reconnect() -> None:
    tracker = Tracker("me")
    first = tracker.on_ready([{"id": "c", "last_seq": 10, "expired_through_seq": 0}])
    assert first.fill == []
    # Away: retention removed seqs 1..6; last_seq did not move, expired_through_seq did.
    again = tracker.on_ready([{"id": "c", "last_seq": 10, "expired_through_seq": 6}])
    assert again.fill == ["c"]
    done = tracker.fill_done("c", [], 10, expired_through_seq=6)
    assert [(e.type, e.data["expired_through_seq"]) for e in done.deliver] == [("messages.expired", 6)]
    # Known now: neither the next ready nor the next fill says it again.
    assert tracker.on_ready([{"id": "c", "last_seq": 10, "expired_through_seq": 6}]).fill == []
    assert tracker.fill_done("c", [], 10, expired_through_seq=6).deliver == []


def test_tracker_passes_live_expiry_and_remembers_it() -> None:
    tracker = Tracker("me")
    tracker.on_ready([{"id": "c", "last_seq": 4}])
    live = RealtimeEvent("messages.expired", {"conversation_id": "c", "seq": 4, "expired_through_seq": 3})
    assert tracker.on_event(live).deliver == [live]
    assert tracker.on_ready([{"id": "c", "last_seq": 4, "expired_through_seq": 3}]).fill == []


@pytest.fixture
async def transport(app: FastAPI) -> AsyncIterator[httpx.ASGITransport]:
    yield httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))


async def sdk_user(transport: httpx.ASGITransport, name: str) -> ParleyClient:
    client = ParleyClient("http://parley.test", transport=transport, device_name="pytest")
    await client.register(name, TEST_PASSWORD)
    await client.login(name, TEST_PASSWORD)
    return client


@pytest.mark.usefixtures("backend")
@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_sdk_lifecycle_calls(transport: httpx.ASGITransport, container: Container) -> None:
    alice = await sdk_user(transport, "alice")
    bob = await sdk_user(transport, "bob")
    try:
        group = await alice.request(
            "POST", "/api/v1/conversations", json={"type": "group", "name": "G", "member_ids": [bob.user_id]}
        )
        conversation_id = group["conversation"]["id"]
        await alice.request(
            "POST", f"/api/v1/conversations/{conversation_id}/messages", json={"content": "soon gone"}
        )
        assert (await alice.set_retention(conversation_id, 1))["retention_days"] == 1
        with pytest.raises(ApiError) as refused:
            await bob.set_retention(conversation_id, 2)
        assert refused.value.code == "FORBIDDEN"
        await container.retention.run(as_of=utcnow() + timedelta(days=2))
        window = await bob.changes_window(conversation_id, 0)
        assert window.messages == [] and window.expired_through_seq == window.last_seq

        log = EventLog(container)
        export = await alice.request_export()
        await export_ready(log, export["id"])
        ready = await alice.export(export["id"])
        archive = zipfile.ZipFile(io.BytesIO(await alice.download_export(ready)))
        assert "profile.json" in archive.namelist()
        with pytest.raises(ApiError) as forged:
            await alice.download_export({"download_url": ready["download_url"].replace("sig=", "sig=x")})
        assert forged.value.status in (403, 404)

        with pytest.raises(ApiError) as wrong:
            await alice.delete_account("not the password")
        assert wrong.value.code == "INVALID_PASSWORD"
        await alice.delete_account(TEST_PASSWORD)
        with pytest.raises(ApiError):
            await alice.login("alice", TEST_PASSWORD)
    finally:
        await alice.aclose()
        await bob.aclose()
