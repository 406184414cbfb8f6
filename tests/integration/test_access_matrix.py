"""The access-control matrix, generated from the route table.

Every route that touches a conversation, message, receipt, reaction, attachment or search
result is called as each role — owner, admin, member, non-member, former member and an
anonymous client — in a fresh world, and must answer the status the matrix expects. A route
that is neither in the matrix nor explicitly listed as not conversation-scoped fails the
test, so a new route cannot slip through unreviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from parley.container import Container
from parley.services.auth import ClientInfo
from tests.conftest import NO_SEND_LIMITS, TEST_PASSWORD

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]

ROLES = ("anonymous", "outsider", "former", "member", "admin", "owner")
SCOPED_ROLES = ("member", "admin", "owner")


def everyone(status: int) -> dict[str, int]:
    """Members of any role get ``status``; outsiders and former members 404; anonymous 401."""
    return {"anonymous": 401, "outsider": 404, "former": 404} | dict.fromkeys(SCOPED_ROLES, status)


def by_role(member: int, admin: int, owner: int) -> dict[str, int]:
    return everyone(0) | {"member": member, "admin": admin, "owner": owner}


@dataclass(frozen=True)
class Probe:
    expected: dict[str, int]
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None


# (METHOD, path template) -> what each role gets. {message_id} is a message the *member* sent.
MATRIX: dict[tuple[str, str], Probe] = {
    ("GET", "/api/v1/conversations/{conversation_id}"): Probe(everyone(200)),
    ("PATCH", "/api/v1/conversations/{conversation_id}"): Probe(by_role(403, 200, 200), {"name": "renamed"}),
    ("DELETE", "/api/v1/conversations/{conversation_id}"): Probe(by_role(403, 403, 204)),
    ("GET", "/api/v1/conversations/by-slug/{slug}"): Probe(everyone(200)),
    ("GET", "/api/v1/conversations/{conversation_id}/members"): Probe(everyone(200)),
    ("POST", "/api/v1/conversations/{conversation_id}/members"): Probe(
        by_role(403, 200, 200), {"user_ids": ["{newcomer}"]}
    ),
    ("DELETE", "/api/v1/conversations/{conversation_id}/members/{user_id}"): Probe(by_role(403, 204, 204)),
    ("PATCH", "/api/v1/conversations/{conversation_id}/members/{user_id}"): Probe(
        by_role(403, 403, 204), {"role": "admin"}
    ),
    ("POST", "/api/v1/conversations/{conversation_id}/read"): Probe(everyone(200), {"seq": 1}),
    ("POST", "/api/v1/conversations/{conversation_id}/delivered"): Probe(everyone(200), {"seq": 1}),
    ("GET", "/api/v1/conversations/{conversation_id}/messages"): Probe(everyone(200)),
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): Probe(everyone(201), {"content": "hi"}),
    ("GET", "/api/v1/conversations/{conversation_id}/changes"): Probe(everyone(200), query={"after_seq": 0}),
    ("GET", "/api/v1/messages/{message_id}"): Probe(everyone(200)),
    ("PATCH", "/api/v1/messages/{message_id}"): Probe(by_role(200, 403, 403), {"content": "edited"}),
    ("DELETE", "/api/v1/messages/{message_id}"): Probe(everyone(200)),
    ("PUT", "/api/v1/messages/{message_id}/reactions/{emoji}"): Probe(everyone(200)),
    ("DELETE", "/api/v1/messages/{message_id}/reactions/{emoji}"): Probe(everyone(200)),
    ("GET", "/api/v1/messages/{message_id}/receipts"): Probe(everyone(200)),
    # {attachment_id}: a text file attached to the member's message (bearer access only;
    # signed URLs are tested in test_attachments_api).
    ("GET", "/api/v1/attachments/{attachment_id}"): Probe(everyone(200)),
    ("GET", "/api/v1/conversations/{conversation_id}/attachments"): Probe(everyone(200)),
    ("GET", "/api/v1/attachments/{attachment_id}/{variant}"): Probe(everyone(200)),
    # The caller's own notification level and mute for the conversation.
    ("PATCH", "/api/v1/conversations/{conversation_id}/settings"): Probe(everyone(200), {"notify": "mentions"}),
    # Data lifecycle (DESIGN §6.4): a group's admins set its retention and export it.
    ("PUT", "/api/v1/conversations/{conversation_id}/retention"): Probe(
        by_role(403, 200, 200), {"retention_days": 30}
    ),
    ("POST", "/api/v1/conversations/{conversation_id}/export"): Probe(by_role(403, 202, 202)),
    # Any member but the sender (one's own message: 403).
    ("POST", "/api/v1/messages/{message_id}/report"): Probe(by_role(403, 201, 201), {"reason": "spam"}),
    # Threads, pins, forwarding (DESIGN §6.5): any member. {message_id} roots a thread.
    ("GET", "/api/v1/messages/{message_id}/thread"): Probe(everyone(200)),
    ("PUT", "/api/v1/messages/{message_id}/thread/follow"): Probe(everyone(200)),
    ("DELETE", "/api/v1/messages/{message_id}/thread/follow"): Probe(everyone(200)),
    ("POST", "/api/v1/messages/{message_id}/thread/read"): Probe(everyone(200), {"seq": 1}),
    ("PUT", "/api/v1/messages/{message_id}/pin"): Probe(everyone(200)),
    ("DELETE", "/api/v1/messages/{message_id}/pin"): Probe(everyone(200)),
    ("GET", "/api/v1/conversations/{conversation_id}/pins"): Probe(everyone(200)),
    ("POST", "/api/v1/messages/{message_id}/forward"): Probe(
        everyone(201), {"conversation_ids": ["{conversation}"]}
    ),
    # Joining a private group by id: members are in already (200), others see nothing.
    ("POST", "/api/v1/conversations/{conversation_id}/join"): Probe(everyone(200)),
    # Invite links: the group's admins (DESIGN §6.3).
    ("POST", "/api/v1/conversations/{conversation_id}/invites"): Probe(by_role(403, 201, 201), {}),
    ("GET", "/api/v1/conversations/{conversation_id}/invites"): Probe(by_role(403, 200, 200)),
    ("DELETE", "/api/v1/conversations/{conversation_id}/invites/{invite_id}"): Probe(by_role(403, 204, 204)),
    # Integrations (DESIGN §6.6): a group's webhooks are its owner's and admins';
    # {webhook_id} is an incoming webhook the owner made. Slash commands: any member.
    ("GET", "/api/v1/conversations/{conversation_id}/webhooks"): Probe(by_role(403, 200, 200)),
    ("POST", "/api/v1/conversations/{conversation_id}/webhooks"): Probe(by_role(403, 201, 201), {"kind": "incoming"}),
    ("GET", "/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}"): Probe(by_role(403, 200, 200)),
    ("PATCH", "/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}"): Probe(
        by_role(403, 200, 200), {"name": "Renamed"}
    ),
    ("DELETE", "/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}"): Probe(by_role(403, 204, 204)),
    ("POST", "/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}/secret"): Probe(by_role(403, 200, 200)),
    ("GET", "/api/v1/conversations/{conversation_id}/webhooks/{webhook_id}/deliveries"): Probe(by_role(403, 200, 200)),
    ("POST", "/api/v1/conversations/{conversation_id}/commands"): Probe(everyone(200), {"text": "/shrug"}),
}

# Routes that are not about one conversation's resources, and where their access is tested.
NOT_CONVERSATION_SCOPED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public liveness (test_ops)",
    ("GET", "/readyz"): "public readiness (test_ops)",
    ("POST", "/api/v1/auth/register"): "public (test_auth_api)",
    ("POST", "/api/v1/auth/login"): "public (test_auth_api)",
    ("POST", "/api/v1/auth/refresh"): "public, refresh token (test_auth_api)",
    ("POST", "/api/v1/auth/logout"): "own session (test_auth_api)",
    ("POST", "/api/v1/auth/logout-all"): "own sessions (test_auth_api)",
    ("GET", "/api/v1/sessions"): "own sessions (test_auth_api)",
    ("DELETE", "/api/v1/sessions/{session_id}"): "own sessions; others' are 404 (test_auth_api)",
    ("GET", "/api/v1/users/me"): "own profile (test_users_api)",
    ("PATCH", "/api/v1/users/me"): "own profile (test_users_api)",
    ("GET", "/api/v1/users"): "directory search (test_users_api)",
    ("GET", "/api/v1/users/{user_id}"): "public profile (test_users_api)",
    ("GET", "/api/v1/conversations"): "lists only the caller's own (test_conversations_api)",
    ("POST", "/api/v1/uploads"): "own uploads until claimed (test_uploads_api, test_attachments_api)",
    ("POST", "/api/v1/conversations"): "creates; blocks tested in test_messages_api",
    ("GET", "/api/v1/contacts"): "own contacts (test_receipts_contacts_api)",
    ("POST", "/api/v1/contacts"): "own contacts (test_receipts_contacts_api)",
    ("POST", "/api/v1/contacts/{user_id}/accept"): "own contacts (test_receipts_contacts_api)",
    ("POST", "/api/v1/contacts/{user_id}/decline"): "own contacts (test_receipts_contacts_api)",
    ("DELETE", "/api/v1/contacts/{user_id}"): "own contacts (test_receipts_contacts_api)",
    ("GET", "/api/v1/blocks"): "own blocks (test_receipts_contacts_api)",
    ("POST", "/api/v1/blocks"): "own blocks (test_receipts_contacts_api)",
    ("DELETE", "/api/v1/blocks/{user_id}"): "own blocks (test_receipts_contacts_api)",
    ("GET", "/api/v1/link-previews/{preview_id}/image"): "signed URL, or a member of a "
    "conversation showing the preview; others 404 (test_link_previews)",
    ("GET", "/api/v1/search"): "only the caller's current conversations; a conversation_id "
    "filter for any other is an empty 200, never 404 (test_search_api)",
    ("GET", "/api/v1/users/me/notifications"): "own defaults (test_notifications_api)",
    ("PATCH", "/api/v1/users/me/notifications"): "own defaults (test_notifications_api)",
    ("GET", "/api/v1/push/vapid-public-key"): "public: the server's public key (test_notifications_api)",
    ("GET", "/api/v1/push/subscriptions"): "own subscriptions (test_notifications_api)",
    ("POST", "/api/v1/push/subscriptions"): "own subscriptions (test_notifications_api)",
    ("DELETE", "/api/v1/push/subscriptions/{subscription_id}"): "own subscriptions; others' "
    "are 404 (test_notifications_api)",
    ("PUT", "/api/v1/devices/{device_id}/keys"): "own devices (test_e2ee_keys_api)",
    ("GET", "/api/v1/devices"): "own devices (test_e2ee_keys_api)",
    ("DELETE", "/api/v1/devices/{device_id}"): "own devices; others' are 404 (test_e2ee_keys_api)",
    ("GET", "/api/v1/users/{user_id}/devices"): "public keys of any user (test_e2ee_keys_api)",
    ("POST", "/api/v1/keys/claim"): "any user's public bundles (test_e2ee_keys_api)",
    ("GET", "/api/v1/keys/count"): "own devices (test_e2ee_keys_api)",
    ("POST", "/api/v1/keys/query"): "public keys of any users (test_e2ee_keys_api)",
    ("POST", "/api/v1/to-device"): "to devices of users sharing a conversation (test_e2ee_inbox_api)",
    ("GET", "/api/v1/to-device"): "own devices' inboxes (test_e2ee_inbox_api)",
    ("POST", "/api/v1/to-device/ack"): "own devices' inboxes (test_e2ee_inbox_api)",
    ("GET", "/api/v1/key-backup"): "own backup (test_e2ee_messages_api)",
    ("PUT", "/api/v1/key-backup"): "own backup (test_e2ee_messages_api)",
    ("DELETE", "/api/v1/key-backup"): "own backup (test_e2ee_messages_api)",
    ("GET", "/api/v1/users/me/email"): "own address (test_notifications_email)",
    ("PUT", "/api/v1/users/me/email"): "own address (test_notifications_email)",
    ("DELETE", "/api/v1/users/me/email"): "own address (test_notifications_email)",
    ("POST", "/api/v1/email/verify"): "public, a signed link token (test_notifications_email)",
    ("GET", "/email/verify"): "public, a signed link token (test_notifications_email)",
    ("GET", "/email/unsubscribe"): "public, a signed link token; changes nothing (test_notifications_email)",
    ("POST", "/email/unsubscribe"): "public, a signed link token (test_notifications_email)",
    ("PUT", "/api/v1/conversations/{conversation_id}/legal-hold"): "site administrators only; "
    "anyone else 403 whatever the conversation (test_lifecycle_retention)",
    ("POST", "/api/v1/users/me/export"): "own export (test_lifecycle_exports)",
    ("GET", "/api/v1/users/me/exports"): "own exports (test_lifecycle_exports)",
    ("GET", "/api/v1/users/me/exports/{export_id}"): "own exports; others' are 404 "
    "(test_lifecycle_exports)",
    ("GET", "/api/v1/exports/{export_id}/download"): "public, a signed link (test_lifecycle_exports)",
    ("DELETE", "/api/v1/users/me"): "own account, with the password (test_lifecycle_erasure)",
    ("DELETE", "/api/v1/admin/users/{user_id}"): "site administrators only (test_lifecycle_erasure)",
    ("GET", "/api/v1/auth/registration"): "public: the registration mode (test_admin_api)",
    ("POST", "/api/v1/auth/login/2fa"): "public, an mfa_token (test_two_factor_api)",
    ("POST", "/api/v1/auth/password-reset"): "public, 202 for everyone (test_account_api)",
    ("POST", "/api/v1/auth/password-reset/confirm"): "public, a reset token (test_account_api)",
    ("POST", "/api/v1/users/me/password"): "own password (test_account_api)",
    ("PUT", "/api/v1/users/me/avatar"): "own picture (test_avatars_api)",
    ("DELETE", "/api/v1/users/me/avatar"): "own picture (test_avatars_api)",
    ("GET", "/api/v1/avatars/{user_id}/{avatar_key}/{size}"): "public: an unguessable URL that "
    "changes with every picture (test_avatars_api)",
    ("PUT", "/api/v1/conversations/{conversation_id}/avatar"): "a group's owner and admins "
    "(test_group_avatars_api)",
    ("DELETE", "/api/v1/conversations/{conversation_id}/avatar"): "a group's owner and admins "
    "(test_group_avatars_api)",
    ("GET", "/api/v1/group-avatars/{conversation_id}/{avatar_key}/{size}"): "public: an unguessable URL "
    "that changes with every picture (test_group_avatars_api)",
    ("GET", "/api/v1/users/me/2fa"): "own 2FA (test_two_factor_api)",
    ("POST", "/api/v1/users/me/2fa"): "own 2FA (test_two_factor_api)",
    ("DELETE", "/api/v1/users/me/2fa"): "own 2FA (test_two_factor_api)",
    ("POST", "/api/v1/users/me/2fa/confirm"): "own 2FA (test_two_factor_api)",
    ("POST", "/api/v1/users/me/2fa/recovery-codes"): "own 2FA (test_two_factor_api)",
    **{
        route: "site staff only: the role matrix of test_admin_api"
        for route in (
            ("GET", "/api/v1/admin/users"),
            ("GET", "/api/v1/admin/users/{user_id}"),
            ("PATCH", "/api/v1/admin/users/{user_id}"),
            ("POST", "/api/v1/admin/users/{user_id}/password-reset-link"),
            ("GET", "/api/v1/admin/users/{user_id}/sessions"),
            ("DELETE", "/api/v1/admin/users/{user_id}/sessions"),
            ("GET", "/api/v1/admin/settings"),
            ("PATCH", "/api/v1/admin/settings"),
            ("GET", "/api/v1/admin/invites"),
            ("POST", "/api/v1/admin/invites"),
            ("DELETE", "/api/v1/admin/invites/{invite_id}"),
            ("GET", "/api/v1/admin/audit"),
            ("GET", "/api/v1/admin/conversations"),
            ("DELETE", "/api/v1/admin/conversations/{conversation_id}"),
            ("PATCH", "/api/v1/admin/conversations/{conversation_id}"),
            ("GET", "/api/v1/admin/reports"),
            ("POST", "/api/v1/admin/reports/{report_id}/resolve"),
        )
    },
    ("GET", "/api/v1/conversations/directory"): "public groups only, to anyone signed in "
    "(test_groups_invites_api)",
    ("GET", "/api/v1/threads"): "own followed threads, current conversations only (test_threads_api)",
    ("GET", "/api/v1/invites/{token}"): "anyone signed in holding the link (test_groups_invites_api)",
    ("POST", "/api/v1/invites/{token}/join"): "anyone signed in holding the link "
    "(test_groups_invites_api)",
    ("GET", "/api/v1/bots"): "own bots (test_bots_api)",
    ("POST", "/api/v1/bots"): "own bots (test_bots_api)",
    ("GET", "/api/v1/bots/{bot_id}"): "own bots; others' are 404 (test_bots_api)",
    ("DELETE", "/api/v1/bots/{bot_id}"): "own bots; others' are 404 (test_bots_api)",
    ("PATCH", "/api/v1/bots/{bot_id}"): "own bots; others' are 404 (test_bots_api)",
    ("POST", "/api/v1/bots/{bot_id}/token"): "own bots; others' are 404 (test_bots_api)",
    ("PUT", "/api/v1/bots/{bot_id}/avatar"): "own bots; others' are 404 (test_bot_pictures)",
    ("DELETE", "/api/v1/bots/{bot_id}/avatar"): "own bots; others' are 404 (test_bot_pictures)",
    ("GET", "/api/v1/commands"): "built-ins, site-wide, and a conversation's for its members; "
    "others 404 (test_commands_api)",
    ("POST", "/api/v1/commands"): "site admins, or a conversation's admins (test_commands_api)",
    ("DELETE", "/api/v1/commands/{command_id}"): "its conversation's admins or site admins; "
    "others 404 (test_commands_api)",
    ("POST", "/hooks/{webhook_id}/{secret}"): "public: the secret in the URL is the credential; "
    "a wrong one is 404 (test_webhooks_api)",
}
PUBLIC = {
    ("POST", "/hooks/{webhook_id}/{secret}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/push/vapid-public-key"),
    ("POST", "/api/v1/email/verify"),
    ("GET", "/email/verify"),
    ("GET", "/email/unsubscribe"),
    ("POST", "/email/unsubscribe"),
    ("GET", "/api/v1/exports/{export_id}/download"),
    ("GET", "/api/v1/auth/registration"),
    ("GET", "/api/v1/avatars/{user_id}/{avatar_key}/{size}"),
    ("GET", "/api/v1/group-avatars/{conversation_id}/{avatar_key}/{size}"),
    ("POST", "/api/v1/auth/login/2fa"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/password-reset/confirm"),
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method.isalpha():
                routes.append((method.upper(), path))
    return sorted(routes)


class World:
    """A group (owner, admin, member, a target member, a former member) with one message."""

    built = 0  # worlds share one database: names and slugs get a running number

    def __init__(self, container: Container) -> None:
        World.built += 1
        self.tag = str(World.built)
        self.container = container
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    async def build(self) -> World:
        c = self.container
        for name in ("owner", "admin", "member", "target", "former", "outsider", "newcomer"):
            user = await c.accounts.register(f"{name}{self.tag}", TEST_PASSWORD)
            tokens, _ = await c.auth.open_session(user.id, ClientInfo())
            self.ids[name] = user.id
            self.tokens[name] = tokens.access_token
        group = await c.conversations.create_group(
            self.ids["owner"],
            "Matrix",
            [self.ids[n] for n in ("admin", "member", "target", "former")],
            slug=f"matrix-{self.tag}",
        )
        self.ids["conversation"] = group.id
        await c.conversations.set_role(self.ids["owner"], group.id, self.ids["admin"], "admin")
        async with c.uploads.open_sink() as sink:
            await sink.write(b"matrix notes\n")
            upload = await c.uploads.create(self.ids["member"], await sink.finish(), filename="n.txt")
        self.ids["attachment"] = upload["id"]
        sent = await c.messages.send(
            self.ids["member"], group.id, "hello", attachment_ids=[upload["id"]]
        )
        self.ids["message"] = sent.message.id
        hook = await c.webhooks.create(self.ids["owner"], group.id, "incoming")
        self.ids["webhook"] = hook.webhook.id
        await c.conversations.remove_member(self.ids["former"], group.id, self.ids["former"])
        invite, _ = await c.invites.create(
            self.ids["owner"], group.id, expires_in_seconds=None, max_uses=None
        )
        self.ids["invite"] = invite["id"]
        return self

    def fill(self, path: str) -> str:
        return (
            path.replace("{conversation_id}", self.ids["conversation"])
            .replace("{message_id}", self.ids["message"])
            .replace("{user_id}", self.ids["target"])
            .replace("{slug}", f"matrix-{self.tag}")
            .replace("{emoji}", "👍")
            .replace("{attachment_id}", self.ids["attachment"])
            .replace("{variant}", "original")
            .replace("{invite_id}", self.ids["invite"])
            .replace("{webhook_id}", self.ids["webhook"])
        )

    def fill_body(self, body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is None:
            return None
        return {
            key: [
                {"{newcomer}": self.ids["newcomer"], "{conversation}": self.ids["conversation"]}.get(v, v)
                for v in value
            ]
            if isinstance(value, list)
            else value
            for key, value in body.items()
        }


def test_every_route_is_classified(app: FastAPI) -> None:
    unclassified = [
        route for route in api_routes(app) if route not in MATRIX and route not in NOT_CONVERSATION_SCOPED
    ]
    assert not unclassified, f"add these routes to the access matrix: {unclassified}"
    stale = [route for route in (*MATRIX, *NOT_CONVERSATION_SCOPED) if route not in api_routes(app)]
    assert not stale, f"the matrix names routes that no longer exist: {stale}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_route_access_by_role(
    route: tuple[str, str], client: httpx.AsyncClient, container: Container
) -> None:
    method, template = route
    probe = MATRIX[route]
    failures = []
    for role in ROLES:
        world = await World(container).build()
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {world.tokens[role]}"}
        response = await client.request(
            method,
            world.fill(template),
            json=world.fill_body(probe.body),
            params=probe.query,
            headers=headers,
        )
        if response.status_code != probe.expected[role]:
            failures.append(f"{role}: expected {probe.expected[role]}, got {response.status_code} {response.text[:200]}")
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}
    assert not failures, "\n".join(failures)


async def test_every_protected_route_refuses_anonymous_clients(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for method, path in api_routes(app):
        if (method, path) in PUBLIC:
            continue
        concrete = path.replace("{", "").replace("}", "")
        response = await client.request(method, concrete, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "AUTHENTICATION_FAILED"
