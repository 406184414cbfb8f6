"""PostgreSQL going away under load, and coming back. The machine's PostgreSQL keeps
running (other tests use it): the nodes reach it through a TCP proxy that is severed —
every connection dropped, new ones refused — and restored.

Sends fail fast with 503 ``UNAVAILABLE`` (REST) or an ``UNAVAILABLE`` error frame (the
socket): never acknowledged, never half-written. Once the database answers again they
succeed, with nobody restarting anything. Readiness names the database meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from parley.client import ApiError, CallError, ParleyClient
from tests.support.gateway_helpers import EventLog, new_user, open_log
from tests.support.scaleout_helpers import DatabaseLink, eventually, running_cluster, through

INTERVAL = 0.05
FAST = 2.0  # a failed send answers within this many seconds


@dataclass
class Outcomes:
    """Per client_msg_id: what the first try got, and how long it took."""

    ok: dict[str, float] = field(default_factory=dict)
    failed: dict[str, tuple[str, float]] = field(default_factory=dict)

    def successes(self) -> int:
        return len(self.ok)


class Senders:
    def __init__(self, conversation_id: str, rest: ParleyClient, socket: EventLog) -> None:
        self.conversation_id = conversation_id
        self.rest_client = rest
        self.socket = socket
        self.rest = Outcomes()
        self.ws = Outcomes()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> Senders:
        self._tasks = [asyncio.create_task(self._rest()), asyncio.create_task(self._ws())]
        return self

    async def _pace(self, began: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._stopping.wait(), max(0.0, INTERVAL - (time.monotonic() - began))
            )

    async def _rest(self) -> None:
        number = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            client_msg_id, number = f"rest-{number}", number + 1
            try:
                await self.rest_client.request(
                    "POST",
                    f"/api/v1/conversations/{self.conversation_id}/messages",
                    json={"content": client_msg_id, "client_msg_id": client_msg_id},
                )
                self.rest.ok[client_msg_id] = time.monotonic() - began
            except ApiError as error:
                took = time.monotonic() - began
                self.rest.failed[client_msg_id] = (f"{error.status} {error.code}", took)
            await self._pace(began)

    async def _ws(self) -> None:
        number = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            client_msg_id, number = f"ws-{number}", number + 1
            try:
                await self.socket.session.send_message(
                    self.conversation_id, client_msg_id, client_msg_id=client_msg_id, timeout=10
                )
                self.ws.ok[client_msg_id] = time.monotonic() - began
            except CallError as error:
                self.ws.failed[client_msg_id] = (error.code, time.monotonic() - began)
            await self._pace(began)

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)


async def test_database_outage_fails_fast_and_heals(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    target = make_url(empty_postgres_url)
    link = await DatabaseLink(target.port or 5432).start()
    try:
        async with running_cluster(tmp_path, through(empty_postgres_url, link.port)) as cluster:
            base = cluster.base_url
            alice, bob = await new_user(base, "alice"), await new_user(base, "bob")
            socket = await open_log(alice, auto_delivered=False)
            try:
                dm = await alice.create_direct(bob.user_id)
                senders = Senders(dm["id"], bob, socket).start()

                async def both_succeed(count: int) -> None:
                    rest, ws = senders.rest.successes() + count, senders.ws.successes() + count
                    await eventually(
                        lambda: asyncio.sleep(
                            0, (senders.rest.successes(), senders.ws.successes())
                        ),
                        lambda done: done[0] >= rest and done[1] >= ws,
                        timeout=15,
                        what=f"{count} more sends succeed on REST and on the socket",
                    )

                await both_succeed(10)
                assert not senders.rest.failed and not senders.ws.failed

                await link.sever()
                severed_at = time.monotonic()
                await eventually(
                    lambda: asyncio.sleep(0, (len(senders.rest.failed), len(senders.ws.failed))),
                    lambda failed: failed[0] >= 10 and failed[1] >= 10,
                    timeout=10,
                    what="sends failing while the database is away",
                )
                for index in (0, 1):
                    ready = await cluster.ready(index)
                    assert ready["http_status"] == 503, ready
                    assert ready["checks"]["database"]["status"] == "error", ready
                    assert ready["checks"]["bus"]["status"] == "ok", ready
                await link.restore()
                outage = time.monotonic() - severed_at

                await both_succeed(10)  # healed by itself: pool_pre_ping, new connections
                await senders.stop()
                for index in (0, 1):
                    ready = await cluster.ready(index)
                    assert ready["http_status"] == 200 and ready["status"] == "ok", ready

                # Fast, and only ever UNAVAILABLE.
                rest_codes = Counter(code for code, _ in senders.rest.failed.values())
                ws_codes = Counter(code for code, _ in senders.ws.failed.values())
                assert set(rest_codes) == {"503 UNAVAILABLE"}, rest_codes
                assert set(ws_codes) == {"UNAVAILABLE"}, ws_codes
                refusals = [*senders.rest.failed.values(), *senders.ws.failed.values()]
                slowest = max(took for _, took in refusals)
                assert slowest < FAST, slowest

                # Nothing half-written: resend every failed send under its id (a send whose
                # commit raced the cut may exist already: then it is returned, not made
                # again), and the conversation holds each message once, seqs 1..N unbroken.
                failed_ids = [*senders.rest.failed, *senders.ws.failed]
                for client_msg_id in failed_ids:
                    await bob.send_message(dm["id"], client_msg_id, client_msg_id=client_msg_id)
                stored, last_seq = await bob.changes_since(dm["id"], 0)
                sent = [*senders.rest.ok, *senders.ws.ok, *failed_ids]
                assert sorted(m["client_msg_id"] for m in stored) == sorted(sent)
                assert sorted(m["seq"] for m in stored) == list(range(1, last_seq + 1))
                print(
                    f"\nPostgreSQL outage of {outage:.2f}s: {len(senders.rest.failed)} REST and "
                    f"{len(senders.ws.failed)} socket sends refused with UNAVAILABLE, slowest "
                    f"refusal {slowest * 1000:.0f} ms; {len(sent)} messages stored once each"
                )
            finally:
                await socket.close()
                for person in (alice, bob):
                    await person.aclose()
    finally:
        await link.close()


def test_what_counts_as_the_database_being_away() -> None:
    """503 for connectivity, wherever it sits in the chain; 500 for everything else."""
    import errno

    from asyncpg import exceptions as pg
    from sqlalchemy import exc as sa

    from parley.store.failures import is_unavailable, unavailable

    cut = sa.DBAPIError("SELECT 1", None, Exception("closed"), connection_invalidated=True)
    wrapped = sa.OperationalError("SELECT 1", None, Exception("adapted"))
    starting = pg.CannotConnectNowError("the database system is starting up")
    wrapped.orig.__cause__ = starting  # type: ignore[union-attr]
    for exc in (cut, wrapped, ConnectionRefusedError(), TimeoutError(), sa.TimeoutError()):
        assert is_unavailable(exc), exc
        error = unavailable(exc)
        assert error is not None and error.status == 503 and error.code == "UNAVAILABLE"
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    syntax = sa.ProgrammingError("SELEKT", None, Exception("syntax error"))
    duplicate = sa.IntegrityError("INSERT", None, Exception("duplicate key"))
    for exc in (disk_full, syntax, ValueError("bug"), duplicate):
        assert not is_unavailable(exc), exc
