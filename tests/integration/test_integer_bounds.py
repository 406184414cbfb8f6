"""Integers past what a database integer holds (≥ 2**63) are refused as bad input, on
SQLite (where binding one raised OverflowError) and PostgreSQL alike: 400 over REST,
``VALIDATION_ERROR`` over the socket — never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]

HUGE = [2**63, 2**64 + 1, 10**30]


async def test_seq_parameters_are_bounded(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await send(client, alice, group["id"], "hello")
    base = f"/api/v1/conversations/{group['id']}"
    for value in HUGE:
        for path, params in (
            (f"{base}/messages", {"before_seq": value}),
            (f"{base}/messages", {"after_seq": value}),
            (f"{base}/changes", {"after_seq": value}),
        ):
            response = await client.get(path, params=params, headers=alice.headers)
            assert response.status_code == 400, (path, params, response.text)
            field = response.json()["error"]["details"][0]["field"]
            assert field == next(iter(params)), response.text
        for kind in ("read", "delivered"):
            response = await client.post(f"{base}/{kind}", json={"seq": value}, headers=alice.headers)
            assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "seq"
    largest = await client.get(f"{base}/changes", params={"after_seq": 2**63 - 1}, headers=alice.headers)
    assert largest.status_code == 200 and largest.json()["messages"] == []
