"""Site administration on SQLite and PostgreSQL (DESIGN §6.3): the role matrix of every
admin route (anonymous, user, moderator, admin), the user directory, roles and
deactivation (sessions revoked), the last administrator, registration modes and invites
(a single-use invite registers one account in a burst), reports and their resolutions, and
the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from parley.clock import utcnow
from parley.container import Container
from parley.ids import new_id
from parley.services.audit import Action
from parley.services.events import Event
from parley.store.tables.administration import audit_log, registration_invites
from tests.conftest import TEST_PASSWORD, UserHandle, make_user
from tests.support.account_helpers import error_code, make_staff
from tests.support.chat_helpers import open_group, send

pytestmark = pytest.mark.usefixtures("backend")


async def login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})


ADMIN_ONLY = {"anonymous": 401, "user": 403, "moderator": 403}
STAFF = {"anonymous": 401, "user": 403}
# (method, path, body, what each role gets). {user_id}: a plain user; {report_id}: an open
# report; {invite_id}: an active invite. Each role gets a fresh world.
ROLE_MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/v1/admin/users", None, ADMIN_ONLY | {"admin": 200}),
    ("GET", "/api/v1/admin/users/{user_id}", None, ADMIN_ONLY | {"admin": 200}),
    ("PATCH", "/api/v1/admin/users/{user_id}", {"role": "moderator"}, ADMIN_ONLY | {"admin": 200}),
    ("POST", "/api/v1/admin/users/{user_id}/password-reset-link", None, ADMIN_ONLY | {"admin": 200}),
    ("GET", "/api/v1/admin/users/{user_id}/sessions", None, ADMIN_ONLY | {"admin": 200}),
    ("DELETE", "/api/v1/admin/users/{user_id}/sessions", None, ADMIN_ONLY | {"admin": 200}),
    # Erasure (docs/lifecycle.md): the account is gone for good.
    ("DELETE", "/api/v1/admin/users/{user_id}", None, ADMIN_ONLY | {"admin": 204}),
    ("GET", "/api/v1/admin/settings", None, ADMIN_ONLY | {"admin": 200}),
    ("PATCH", "/api/v1/admin/settings", {"registration": "invite"}, ADMIN_ONLY | {"admin": 200}),
    ("GET", "/api/v1/admin/invites", None, ADMIN_ONLY | {"admin": 200}),
    ("POST", "/api/v1/admin/invites", {"max_uses": 2}, ADMIN_ONLY | {"admin": 201}),
    ("DELETE", "/api/v1/admin/invites/{invite_id}", None, ADMIN_ONLY | {"admin": 204}),
    ("GET", "/api/v1/admin/audit", None, ADMIN_ONLY | {"admin": 200}),
    ("GET", "/api/v1/admin/conversations", None, ADMIN_ONLY | {"admin": 200}),
    ("DELETE", "/api/v1/admin/conversations/{conversation_id}", None, ADMIN_ONLY | {"admin": 204}),
    ("PATCH", "/api/v1/admin/conversations/{conversation_id}", {"archived": True}, ADMIN_ONLY | {"admin": 200}),
    ("GET", "/api/v1/admin/reports", None, STAFF | {"moderator": 200, "admin": 200}),
    ("POST", "/api/v1/admin/reports/{report_id}/resolve", {"action": "dismiss"}, STAFF | {"moderator": 200, "admin": 200}),
]


class World:
    built = 0

    async def build(self, client: httpx.AsyncClient, container: Container) -> World:
        World.built += 1
        tag = World.built
        self.admin = await make_staff(client, container, f"admin{tag}", "admin")
        self.moderator = await make_staff(client, container, f"mod{tag}", "moderator")
        self.user = await make_user(client, f"user{tag}")
        self.target = await make_user(client, f"target{tag}")
        group = await open_group(client, self.user, [self.target], name=f"g{tag}")
        message = await send(client, self.target, group["id"], "something rude")
        report = await client.post(
            f"/api/v1/messages/{message['id']}/report", json={"reason": "rude"}, headers=self.user.headers
        )
        assert report.status_code == 201, report.text
        invite, _ = await container.registration.create_invite(self.admin.id, max_uses=1, expires_in_hours=1)
        self.values = {
            "user_id": self.target.id,
            "report_id": report.json()["report"]["id"],
            "invite_id": invite.id,
            "conversation_id": group["id"],
        }
        return self

    def headers(self, role: str) -> dict[str, str]:
        handle = {"user": self.user, "moderator": self.moderator, "admin": self.admin}.get(role)
        return handle.headers if handle else {}

    def fill(self, template: str) -> str:
        for name, value in self.values.items():
            template = template.replace("{" + name + "}", value)
        return template


def test_the_role_matrix_covers_every_admin_route(app: Any) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/v1/admin")
    }
    assert routes == {(method, path) for method, path, _, _ in ROLE_MATRIX}


@pytest.mark.parametrize("route", ROLE_MATRIX, ids=lambda r: f"{r[0]} {r[1]}")
async def test_admin_routes_by_role(
    route: tuple[str, str, dict[str, Any] | None, dict[str, int]],
    client: httpx.AsyncClient,
    container: Container,
) -> None:
    method, template, body, expected = route
    failures = []
    for role in ("anonymous", "user", "moderator", "admin"):
        world = await World().build(client, container)
        response = await client.request(method, world.fill(template), json=body, headers=world.headers(role))
        if response.status_code != expected[role]:
            failures.append(f"{role}: expected {expected[role]}, got {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_directory_search_roles_and_deactivation(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    await make_user(client, "alfred")
    await make_user(client, "bob")
    found = await client.get("/api/v1/admin/users", params={"q": "al"}, headers=admin.headers)
    assert [u["username"] for u in found.json()["users"]] == ["alice", "alfred"]
    page = await client.get("/api/v1/admin/users", params={"limit": 2}, headers=admin.headers)
    assert page.json()["has_more"] is True
    rest = await client.get(
        "/api/v1/admin/users", params={"after": page.json()["users"][-1]["id"]}, headers=admin.headers
    )
    assert len(page.json()["users"]) + len(rest.json()["users"]) == 4
    admins = await client.get("/api/v1/admin/users", params={"role": "admin"}, headers=admin.headers)
    assert [u["username"] for u in admins.json()["users"]] == ["root"]

    promoted = await client.patch(f"/api/v1/admin/users/{alice.id}", json={"role": "moderator"}, headers=admin.headers)
    assert promoted.json()["user"]["role"] == "moderator"
    me = await client.get("/api/v1/users/me", headers=alice.headers)
    assert me.json()["user"]["role"] == "moderator"
    assert (await client.get("/api/v1/admin/reports", headers=alice.headers)).status_code == 200

    second = (await login(client, "alice")).json()
    off = await client.patch(f"/api/v1/admin/users/{alice.id}", json={"deactivated": True}, headers=admin.headers)
    assert off.status_code == 200 and off.json()["user"]["deactivated"] is True
    for token in (alice.access_token, second["access_token"]):
        gone = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})).status_code == 401
    assert (await login(client, "alice")).status_code == 401
    hidden = await client.get("/api/v1/admin/users", params={"status": "deactivated"}, headers=admin.headers)
    assert [u["username"] for u in hidden.json()["users"]] == ["alice"]
    on = await client.patch(f"/api/v1/admin/users/{alice.id}", json={"deactivated": False}, headers=admin.headers)
    assert on.json()["user"]["deactivated"] is False
    assert (await login(client, "alice")).status_code == 200

    async with container.db.read() as conn:
        entries = [r.action for r in await conn.execute(select(audit_log.c.action).where(audit_log.c.actor_id == admin.id))]
    assert {"user.role_changed", "user.deactivated", "sessions.revoked", "user.reactivated"} <= set(entries)


async def test_admin_bad_input(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    url = f"/api/v1/admin/users/{alice.id}"
    for body in ({"role": "owner"}, {"deactivated": "yes please"}, {"role": None, "extra": 1}, {"role": "a\u0000"}):
        response = await client.patch(url, json=body, headers=admin.headers)
        assert response.status_code == 400, (body, response.text)
    assert (await client.patch(f"/api/v1/admin/users/{new_id()}", json={"role": "user"}, headers=admin.headers)).status_code == 404
    assert (await client.patch("/api/v1/admin/users/nope", json={"role": "user"}, headers=admin.headers)).status_code == 404
    for params in ({"limit": 0}, {"limit": 10**20}, {"role": "owner"}, {"status": "gone"}, {"q": "x" * 101}):
        response = await client.get("/api/v1/admin/users", params=params, headers=admin.headers)
        assert response.status_code == 400, (params, response.text)
    for body in ({"max_uses": 0}, {"max_uses": 10**20}, {"expires_in_hours": -1}, {"note": "x" * 201}):
        response = await client.post("/api/v1/admin/invites", json=body, headers=admin.headers)
        assert response.status_code == 400, (body, response.text)
    assert (await client.patch("/api/v1/admin/settings", json={"registration": "sometimes"}, headers=admin.headers)).status_code == 400
    myself = await client.patch(f"/api/v1/admin/users/{admin.id}", json={"deactivated": True}, headers=admin.headers)
    assert myself.status_code == 403


async def test_the_last_admin_stays(client: httpx.AsyncClient, container: Container) -> None:
    root = await make_staff(client, container, "root", "admin")
    demote = await client.patch(f"/api/v1/admin/users/{root.id}", json={"role": "user"}, headers=root.headers)
    assert demote.status_code == 409 and error_code(demote) == "LAST_ADMIN"
    # Two administrators demoting each other at once: one of them stays.
    other = await make_staff(client, container, "other", "admin")
    answers = await asyncio.gather(
        client.patch(f"/api/v1/admin/users/{other.id}", json={"role": "user"}, headers=root.headers),
        client.patch(f"/api/v1/admin/users/{root.id}", json={"role": "user"}, headers=other.headers),
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses in ([200, 409], [200, 403]), [r.text for r in answers]
    listed = await container.administration.list_users(role="admin")
    assert len(listed[0]) == 1


async def test_registration_modes_and_invites(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    assert (await client.get("/api/v1/auth/registration")).json() == {"registration": "open"}

    async def register(username: str, invite: str | None = None) -> httpx.Response:
        body = {"username": username, "password": TEST_PASSWORD} | ({"invite": invite} if invite else {})
        return await client.post("/api/v1/auth/register", json=body)

    await client.patch("/api/v1/admin/settings", json={"registration": "closed"}, headers=admin.headers)
    closed = await register("carol")
    assert closed.status_code == 403 and error_code(closed) == "REGISTRATION_CLOSED"
    await client.patch("/api/v1/admin/settings", json={"registration": "invite"}, headers=admin.headers)
    assert (await client.get("/api/v1/auth/registration")).json() == {"registration": "invite"}
    needed = await register("carol")
    assert needed.status_code == 403 and error_code(needed) == "INVITE_REQUIRED"

    made = await client.post("/api/v1/admin/invites", json={"note": "for carol"}, headers=admin.headers)
    assert made.status_code == 201
    invite = made.json()["invite"]
    assert invite["max_uses"] == 1 and invite["state"] == "active"
    assert invite["url"].endswith(f"/register?invite={invite['token']}")
    # A burst of registrations with one single-use invite: exactly one account.
    answers = await asyncio.gather(*(register(f"burst{i}", invite["token"]) for i in range(6)))
    assert sorted(r.status_code for r in answers) == [201, 400, 400, 400, 400, 400]
    assert {error_code(r) for r in answers if r.status_code == 400} == {"INVALID_INVITE"}
    listed = await client.get("/api/v1/admin/invites", headers=admin.headers)
    assert listed.json()["invites"][0]["state"] == "used" and listed.json()["invites"][0]["uses"] == 1

    # A failed registration (taken username) uses nothing of a multi-use invite.
    multi = (await client.post("/api/v1/admin/invites", json={"max_uses": 2}, headers=admin.headers)).json()["invite"]
    assert (await register("root", multi["token"])).status_code == 409
    assert (await register("dave", multi["token"])).status_code == 201
    assert (await register("erin", multi["token"])).status_code == 201
    assert (await register("frank", multi["token"])).status_code == 400

    revoked = (await client.post("/api/v1/admin/invites", json={"max_uses": None}, headers=admin.headers)).json()["invite"]
    assert (await client.delete(f"/api/v1/admin/invites/{revoked['id']}", headers=admin.headers)).status_code == 204
    assert (await client.delete(f"/api/v1/admin/invites/{revoked['id']}", headers=admin.headers)).status_code == 404
    assert error_code(await register("gina", revoked["token"])) == "INVALID_INVITE"
    for bad in ("nope", "x" * 128):
        assert error_code(await register("gina", bad)) == "INVALID_INVITE"
    assert (await register("gina", "x" * 129)).status_code == 400

    expiring, token = await container.registration.create_invite(admin.id, max_uses=None, expires_in_hours=1)
    async with container.db.transaction() as conn:
        await conn.execute(
            update(registration_invites)
            .where(registration_invites.c.id == expiring.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert error_code(await register("gina", token)) == "INVALID_INVITE"
    # Closed means closed, invites too.
    fresh, token = await container.registration.create_invite(admin.id, max_uses=1, expires_in_hours=1)
    await client.patch("/api/v1/admin/settings", json={"registration": "closed"}, headers=admin.headers)
    assert error_code(await register("gina", token)) == "REGISTRATION_CLOSED"


async def world_with_report(client: httpx.AsyncClient, container: Container) -> tuple[UserHandle, UserHandle, UserHandle, dict[str, Any], dict[str, Any]]:
    moderator = await make_staff(client, container, "mod", "moderator")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="room")
    message = await send(client, bob, group["id"], "buy cheap watches")
    return moderator, alice, bob, group, message


async def test_reports_and_resolutions(client: httpx.AsyncClient, container: Container) -> None:
    moderator, alice, bob, group, message = await world_with_report(client, container)
    heard: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        heard.extend(e for e in events if e.type == "report.resolved")

    container.events.add_listener(listen)
    url = f"/api/v1/messages/{message['id']}/report"
    own = await client.post(url, json={"reason": "mine"}, headers=bob.headers)
    assert own.status_code == 403
    for body in ({"reason": ""}, {"reason": "   "}, {"reason": "x" * 1001}, {"reason": "a\u0000b"}, {}):
        assert (await client.post(url, json=body, headers=alice.headers)).status_code == 400, body
    burst = await asyncio.gather(*(client.post(url, json={"reason": "spam"}, headers=alice.headers) for _ in range(5)))
    assert sorted(r.status_code for r in burst) == [201, 409, 409, 409, 409]
    assert {error_code(r) for r in burst if r.status_code == 409} == {"ALREADY_REPORTED"}
    outsider = await make_user(client, "mallory")
    assert (await client.post(url, json={"reason": "spam"}, headers=outsider.headers)).status_code == 404

    queue = await client.get("/api/v1/admin/reports", headers=moderator.headers)
    [report] = queue.json()["reports"]
    assert report["message"] == {"content": "buy cheap watches", "deleted": False}
    assert (report["reporter_username"], report["sender_username"]) == ("alice", "bob")

    resolve = f"/api/v1/admin/reports/{report['id']}/resolve"
    assert (await client.post(resolve, json={"action": "ban"}, headers=moderator.headers)).status_code == 400
    deleted = await client.post(resolve, json={"action": "delete_message"}, headers=moderator.headers)
    assert deleted.status_code == 200 and deleted.json()["report"]["resolution"] == "message_deleted"
    history = await client.get(f"/api/v1/conversations/{group['id']}/messages", headers=alice.headers)
    assert [m for m in history.json()["messages"] if m["id"] == message["id"]][0]["deleted"] is True
    again = await client.post(resolve, json={"action": "dismiss"}, headers=moderator.headers)
    assert again.status_code == 409 and error_code(again) == "ALREADY_RESOLVED"
    assert [e.user_ids for e in heard] == [(alice.id,)]
    assert heard[0].data["report"]["resolution"] == "message_deleted"
    assert (await client.get("/api/v1/admin/reports", headers=moderator.headers)).json()["reports"] == []
    done = await client.get("/api/v1/admin/reports", params={"status": "resolved"}, headers=moderator.headers)
    assert len(done.json()["reports"]) == 1
    # The audit log names the message, never its text.
    entries, _ = await container.audit.list()
    assert {Action.REPORT_CREATED, Action.REPORT_RESOLVED} <= {e.action for e in entries}
    assert all("watches" not in str(e.to_public()) for e in entries)


async def test_deactivating_a_reported_sender(client: httpx.AsyncClient, container: Container) -> None:
    moderator, alice, bob, group, message = await world_with_report(client, container)
    made = await client.post(f"/api/v1/messages/{message['id']}/report", json={"reason": "spam"}, headers=alice.headers)
    resolve = f"/api/v1/admin/reports/{made.json()['report']['id']}/resolve"
    done = await client.post(resolve, json={"action": "deactivate_sender"}, headers=moderator.headers)
    assert done.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=bob.headers)).status_code == 401
    assert (await login(client, "bob")).status_code == 401
    # Moderators cannot deactivate staff; administrators can.
    admin = await make_staff(client, container, "root", "admin")
    other_mod = await make_staff(client, container, "mod2", "moderator")
    await client.post(f"/api/v1/conversations/{group['id']}/members", json={"user_ids": [other_mod.id]}, headers=alice.headers)
    staff_message = await send(client, other_mod, group["id"], "hello from staff")
    made = await client.post(f"/api/v1/messages/{staff_message['id']}/report", json={"reason": "x"}, headers=alice.headers)
    resolve = f"/api/v1/admin/reports/{made.json()['report']['id']}/resolve"
    refused = await client.post(resolve, json={"action": "deactivate_sender"}, headers=moderator.headers)
    assert refused.status_code == 403
    assert (await client.post(resolve, json={"action": "deactivate_sender"}, headers=admin.headers)).status_code == 200


async def test_audit_log_filters_pages_and_prunes(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    await make_user(client, "alice")
    for _ in range(3):
        assert (await client.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong password!"})).status_code == 401
    failed = await client.get("/api/v1/admin/audit", params={"action": "login.failed", "limit": 2}, headers=admin.headers)
    body = failed.json()
    assert [e["action"] for e in body["entries"]] == ["login.failed"] * 2 and body["has_more"] is True
    assert body["entries"][0]["details"] == {"username": "alice"}
    assert body["entries"][0]["ip_address"] == "127.0.0.1"
    rest = await client.get(
        "/api/v1/admin/audit",
        params={"action": "login.failed", "before": body["entries"][-1]["id"]},
        headers=admin.headers,
    )
    assert len(rest.json()["entries"]) == 1 and rest.json()["has_more"] is False
    assert (await client.get("/api/v1/admin/audit", params={"limit": 500}, headers=admin.headers)).status_code == 400
    assert await container.audit.prune(utcnow() + timedelta(days=91)) >= 3
    assert (await client.get("/api/v1/admin/audit", headers=admin.headers)).json()["entries"] == []


async def test_conversations_listed_and_deleted(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Design_100%")
    await open_group(client, alice, [bob], name="Other")
    direct = await client.post("/api/v1/conversations", json={"type": "direct", "user_id": bob.id}, headers=alice.headers)
    assert direct.status_code in (200, 201), direct.text
    heard: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        heard.extend(e for e in events if e.type == "conversation.deleted")

    container.events.add_listener(listen)
    found = await client.get("/api/v1/admin/conversations", params={"q": "_100%"}, headers=admin.headers)
    assert [(c["name"], c["member_count"]) for c in found.json()["conversations"]] == [("Design_100%", 2)]
    groups = await client.get("/api/v1/admin/conversations", params={"type": "group"}, headers=admin.headers)
    assert len(groups.json()["conversations"]) == 2
    everything = await client.get("/api/v1/admin/conversations", params={"limit": 2}, headers=admin.headers)
    assert everything.json()["has_more"] is True
    for params in ({"type": "channel"}, {"limit": 0}, {"q": "x" * 101}):
        assert (await client.get("/api/v1/admin/conversations", params=params, headers=admin.headers)).status_code == 400

    url = f"/api/v1/admin/conversations/{group['id']}"
    assert (await client.delete(url, headers=alice.headers)).status_code == 403
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.delete(url, headers=admin.headers)).status_code == 404
    assert (await client.get(f"/api/v1/conversations/{group['id']}", headers=bob.headers)).status_code == 404
    assert [set(e.user_ids) for e in heard] == [{alice.id, bob.id}]
    entries, _ = await container.audit.list(action="conversation.deleted")
    assert [(e.actor_id, e.target_id) for e in entries] == [(admin.id, group["id"])]
