"""Targets: how users, groups and direct conversations are made on each server under test —
Parley through its REST API, the floor through its one room-making endpoint. The same
scenario code drives either."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from procs import Server

PASSWORD = "bench passphrase 1"
LOGIN_ATTEMPTS = 20


class ParleyTarget:
    """Users, groups and direct conversations through Parley's REST API (httpx)."""

    name = "parley"

    def __init__(self, server: Server, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.tokens: dict[int, str] = {}
        self.user_ids: dict[int, str] = {}

    async def setup_users(self, count: int, concurrency: int = 16) -> float:
        started = time.monotonic()
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:

            async def one(key: int) -> None:
                name = f"{self.prefix}{key}"
                async with limit:
                    response = await http.post(
                        "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
                    )
                    if response.status_code not in (201, 409):
                        response.raise_for_status()
                    for _ in range(LOGIN_ATTEMPTS):
                        response = await http.post(
                            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
                        )
                        if response.status_code != 429:
                            break
                        # With the Redis limiter, parallel logins from one address are now
                        # and then refused with retry_after 0 (the stored timestamp is
                        # rounded up): setup is not what is measured, so try again.
                        await asyncio.sleep(0.05 + float(response.json()["error"].get("retry_after") or 0))
                    response.raise_for_status()
                    body = response.json()
                self.tokens[key] = body["access_token"]
                self.user_ids[key] = body["user"]["id"]

            await asyncio.gather(*(one(key) for key in range(count) if key not in self.tokens))
        return time.monotonic() - started

    async def group(self, members: list[int], name: str) -> str:
        owner, rest = members[0], members[1:]
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=120) as http:
            response = await http.post(
                "/api/v1/conversations",
                json={"type": "group", "name": name, "member_ids": [self.user_ids[k] for k in rest]},
                headers={"authorization": f"Bearer {self.tokens[owner]}"},
            )
            response.raise_for_status()
            return str(response.json()["conversation"]["id"])

    async def direct(self, pairs: list[tuple[int, int]]) -> list[str]:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:

            async def one(a: int, b: int) -> str:
                response = await http.post(
                    "/api/v1/conversations",
                    json={"type": "direct", "user_id": self.user_ids[b]},
                    headers={"authorization": f"Bearer {self.tokens[a]}"},
                )
                response.raise_for_status()
                return str(response.json()["conversation"]["id"])

            return list(await asyncio.gather(*(one(a, b) for a, b in pairs)))


class FloorTarget:
    """The floor has no accounts: a user's token is its name; rooms are made over HTTP."""

    name = "floor"

    def __init__(self, server: Server, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.tokens: dict[int, str] = {}

    async def setup_users(self, count: int, concurrency: int = 16) -> float:
        for key in range(count):
            self.tokens[key] = f"{self.prefix}{key}"
        return 0.0

    async def _room(self, http: httpx.AsyncClient, members: list[int]) -> str:
        room = uuid.uuid4().hex[:26].upper()
        response = await http.post(
            "/floor/rooms", json={"id": room, "member_ids": [self.tokens[k] for k in members]}
        )
        response.raise_for_status()
        return room

    async def group(self, members: list[int], name: str) -> str:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:
            return await self._room(http, members)

    async def direct(self, pairs: list[tuple[int, int]]) -> list[str]:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:
            return [await self._room(http, [a, b]) for a, b in pairs]


Target = ParleyTarget | FloorTarget
