"""An incoming webhook's own bot goes with its conversation (DESIGN §6.6), on SQLite and
PostgreSQL: deleting the conversation (by its owner or a site admin) deactivates the bots
its webhooks made — not a bot of a user's that a webhook posted as — and a burst of posts
racing the deletion gets no 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from parley.container import Container
from parley.store.tables.accounts import users
from tests.conftest import make_user
from tests.support.account_helpers import make_staff
from tests.support.chat_helpers import open_group
from tests.support.integration_helpers import make_bot

pytestmark = pytest.mark.usefixtures("backend")


async def deactivated(container: Container, user_id: str) -> bool:
    async with container.db.read() as conn:
        row = (await conn.execute(select(users.c.deactivated_at).where(users.c.id == user_id))).one()
    return row.deactivated_at is not None


async def make_hook(client: httpx.AsyncClient, headers: dict[str, str], conversation_id: str, **body: object) -> dict[str, str]:
    response = await client.post(f"/api/v1/conversations/{conversation_id}/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    hook: dict[str, str] = response.json()["webhook"]
    return hook


async def test_deleting_a_conversation_retires_its_webhook_bots(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="alerts")
    own = await make_hook(client, alice.headers, group["id"], kind="incoming", name="CI")
    helper = await make_bot(client, alice, "helperbot")
    borrowed = await make_hook(client, alice.headers, group["id"], kind="incoming", name="Via helper", bot_id=helper.id)
    assert (await client.post(own["path"], json={"text": "build passed"})).status_code == 200
    # The group in a burst of posts to its webhook while it is deleted: no 500.
    posts = [client.post(own["path"], json={"text": f"burst {i}"}) for i in range(10)]
    removal = client.delete(f"/api/v1/conversations/{group['id']}", headers=alice.headers)
    *answers, removed = await asyncio.gather(*posts, removal)
    assert removed.status_code == 204, removed.text
    assert all(a.status_code in (200, 404) for a in answers), [a.text for a in answers]
    assert await deactivated(container, own["bot_id"])
    assert not await deactivated(container, helper.id)  # a user's own bot lives on
    assert (await client.post(own["path"], json={"text": "gone"})).status_code == 404
    assert (await client.post(borrowed["path"], json={"text": "gone"})).status_code == 404
    seen = await client.get(f"/api/v1/users/{own['bot_id']}", headers=bob.headers)
    assert seen.status_code in (200, 404)


async def test_a_site_admins_deletion_retires_them_too(client: httpx.AsyncClient, container: Container) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="Solo alerts")
    hooks = [await make_hook(client, alice.headers, group["id"], kind="incoming", name=f"Hook {i}") for i in range(3)]
    assert (await client.delete(f"/api/v1/admin/conversations/{group['id']}", headers=admin.headers)).status_code == 204
    assert [await deactivated(container, h["bot_id"]) for h in hooks] == [True] * 3
    # An unknown or malformed conversation: 404, nothing else touched.
    for target in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope"):
        assert (await client.delete(f"/api/v1/admin/conversations/{target}", headers=admin.headers)).status_code == 404
    assert not await deactivated(container, alice.id)
