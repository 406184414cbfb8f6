"""Backpressure: a client that stops reading is closed with 4009 and costs the server a
bounded amount of memory, while a client that keeps up on the same conversation loses
nothing and is never closed."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from parley.client import ParleyClient
from tests.support.gateway_helpers import (
    WAIT,
    RawSocket,
    is_linux,
    metric,
    new_user,
    open_log,
    rss_kib,
    running_server,
)

pytestmark = [
    pytest.mark.skipif(not is_linux(), reason="reads RSS from /proc"),
]

OUTBOX_LIMIT = 16
# The kernel buffers ~4 MB for a stalled socket (send-buffer autotuning) before the server
# feels anything: large messages fill that fast. One long word each, so that indexing them
# for search stays cheap; the stalled client negotiates no compression.
MESSAGE_CHARS = 48_000
AFTER_DECISION = 160  # messages sent while the stalled client still holds its connection


async def stalled_socket(port: int, token: str) -> RawSocket:
    """Identifies, then never reads again: a tiny receive buffer, one frame of read-ahead."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    ws = await connect(f"ws://127.0.0.1:{port}/ws", sock=sock, max_queue=1, compression=None)
    raw = RawSocket(ws)
    await raw.identify(token)
    return raw


async def scrape(http: httpx.AsyncClient) -> str:
    return (await http.get("/metrics")).text


async def test_slow_reader_is_closed_with_4009_and_memory_stays_bounded(
    tmp_path: Path, database_url: str, free_port: int, backend: str
) -> None:
    async with running_server(
        tmp_path,
        database_url,
        free_port,
        gateway_outbox_limit=OUTBOX_LIMIT,
        max_message_chars=MESSAGE_CHARS,
        max_request_body_bytes=1_048_576,
    ) as server:
        assert server.process is not None
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        dm = await alice.create_direct(bob.user_id)
        keeping_up = await open_log(bob, auto_delivered=False)
        slow = await stalled_socket(free_port, bob.tokens.access_token)  # type: ignore[union-attr]
        sent: list[str] = []
        most_queued = 0.0
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT) as http:

                async def send(count: int) -> None:
                    await asyncio.gather(
                        *(_send_some(alice, dm["id"], count // 4, sent) for _ in range(4))
                    )

                # Phase 1: traffic until the server gives up on the stalled client.
                while (
                    metric(await scrape(http), 'parley_gateway_sessions_by_state{state="closing"}')
                    < 1
                ):
                    assert len(sent) < 600, "the stalled client was never closed"
                    await send(20)
                    most_queued = max(
                        most_queued, metric(await scrape(http), "parley_gateway_outbox_frames")
                    )
                decided_at = len(sent)

                # Phase 2: much more traffic while the stalled client still holds its
                # socket. None of it may pile up for that client. RSS is compared across
                # the second half only: the first half brings the allocator to its working
                # set (several large requests in flight), retention would grow with volume.
                rss_at_half = 0
                for round_ in range(AFTER_DECISION // 20):
                    if round_ == AFTER_DECISION // 40:
                        rss_at_half = rss_kib(server.process.pid)
                    await send(20)
                    most_queued = max(
                        most_queued, metric(await scrape(http), "parley_gateway_outbox_frames")
                    )
                growth_kib = rss_kib(server.process.pid) - rss_at_half
                half_kib = AFTER_DECISION // 2 * MESSAGE_CHARS // 1024

                # The stalled client reads again: what was in flight, then 4009.
                assert await slow.closed_with(timeout=WAIT) == 4009
                text = await scrape(http)
            # The client that kept up got every message, live, and was never closed.
            await keeping_up.wait_for(lambda _: len(keeping_up.of("message.created")) >= len(sent))
            received = [e.data["message"]["id"] for e in keeping_up.of("message.created")]
            assert sorted(received) == sorted(sent) and len(set(received)) == len(sent)
            assert keeping_up.session.close_codes == []
            assert not any(e.replayed for e in keeping_up.events)
        finally:
            await slow.close()
            await keeping_up.close()
            await alice.aclose()
            await bob.aclose()
        print(
            f"\n4009 after {decided_at} messages of {MESSAGE_CHARS} chars; "
            f"RSS growth over the last {AFTER_DECISION // 2} ({half_kib} KiB): {growth_kib} KiB; "
            f"most frames queued: {most_queued:.0f}"
        )
        assert most_queued <= 2 * OUTBOX_LIMIT  # two sessions, each bounded
        # Holding the backlog would take at least half_kib; bounded takes none of it. On
        # SQLite the server process also holds SQLite's page cache, which grows with the
        # database (up to cache_size per pooled connection): a looser bound there.
        assert growth_kib < (half_kib / 3 if backend == "postgres" else half_kib * 0.8)
        assert metric(text, 'parley_gateway_closes_total{code="4009"}') == 1


async def _send_some(
    client: ParleyClient, conversation_id: str, count: int, sent: list[str]
) -> None:
    for _ in range(count):
        content = secrets.token_hex(8) + "x" * (MESSAGE_CHARS - 16)
        message = await client.send_message(conversation_id, content)
        sent.append(message["id"])
