"""Exports and erasures in the audit log (DESIGN §6.3), on SQLite and PostgreSQL: each is
recorded when requested (by whom) and when finished, seen in ``GET /api/v1/admin/audit``,
never with content; a concurrent burst records exactly the exports it accepted."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from parley.container import Container
from tests.conftest import NO_SEND_LIMITS, TEST_PASSWORD, UserHandle, make_user
from tests.support.account_helpers import make_staff
from tests.support.chat_helpers import open_group, send
from tests.support.container_events import EventLog
from tests.support.lifecycle_helpers import export_ready

pytestmark = pytest.mark.usefixtures("backend")


async def audit(client: httpx.AsyncClient, admin: UserHandle, action: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/admin/audit", params={"action": action}, headers=admin.headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_exports_are_audited(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Plans")
    await send(client, alice, group["id"], "a secret plan")
    log = EventLog(container)
    personal = await client.post("/api/v1/users/me/export", headers=alice.headers)
    assert personal.status_code == 202
    whole = await client.post(f"/api/v1/conversations/{group['id']}/export", headers=alice.headers)
    assert whole.status_code == 202
    for export in (personal.json()["export"], whole.json()["export"]):
        await export_ready(log, export["id"])
    requested = await audit(client, admin, "export.requested")
    assert {(e["actor_id"], e["target_id"], e["details"]["kind"]) for e in requested} == {
        (alice.id, personal.json()["export"]["id"], "personal"),
        (alice.id, whole.json()["export"]["id"], "conversation"),
    }
    finished = await audit(client, admin, "export.finished")
    assert sorted(e["target_id"] for e in finished) == sorted(
        [personal.json()["export"]["id"], whole.json()["export"]["id"]]
    )
    assert all(e["details"]["status"] == "ready" and e["target_user_id"] == alice.id for e in finished)
    everything = (await client.get("/api/v1/admin/audit", headers=admin.headers)).text
    assert "secret plan" not in everything
    # A refused request (not an admin of the group) records nothing.
    assert (await client.post(f"/api/v1/conversations/{group['id']}/export", headers=bob.headers)).status_code == 403
    assert len(await audit(client, admin, "export.requested")) == 2
    # Only the users' own view: a user cannot read the log.
    assert (await client.get("/api/v1/admin/audit", headers=alice.headers)).status_code == 403


@pytest.mark.settings(exports_per_day=2)
async def test_an_export_burst_records_what_was_accepted(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    carol = await make_user(client, "carol")
    responses = await asyncio.gather(
        *(client.post("/api/v1/users/me/export", headers=carol.headers) for _ in range(8))
    )
    accepted = sorted(r.json()["export"]["id"] for r in responses if r.status_code == 202)
    assert len(accepted) == 2 and all(r.status_code in (202, 429) for r in responses)
    requested = await audit(client, admin, "export.requested")
    assert sorted(e["target_id"] for e in requested) == accepted


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_erasures_are_audited(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await send(client, alice, group["id"], "words to forget")
    log = EventLog(container)
    # A wrong password erases nothing and records no erasure.
    wrong = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": "not it at all"}, headers=alice.headers
    )
    assert wrong.status_code == 403
    assert await audit(client, admin, "erasure.requested") == []
    mine = await client.request("DELETE", "/api/v1/users/me", json={"password": TEST_PASSWORD}, headers=alice.headers)
    assert mine.status_code == 204
    await log.wait_for(lambda e: e.type == "user.erased" and e.data["user_id"] == alice.id)
    assert (await client.delete(f"/api/v1/admin/users/{bob.id}", headers=admin.headers)).status_code == 204
    await log.wait_for(lambda e: e.type == "user.erased" and e.data["user_id"] == bob.id)
    requested = await audit(client, admin, "erasure.requested")
    assert {(e["actor_id"], e["target_user_id"], e["details"]["by_admin"]) for e in requested} == {
        (alice.id, alice.id, False),
        (admin.id, bob.id, True),
    }
    finished = await audit(client, admin, "erasure.finished")
    assert sorted(e["target_user_id"] for e in finished) == sorted([alice.id, bob.id])
    assert "words to forget" not in (await client.get("/api/v1/admin/audit", headers=admin.headers)).text
