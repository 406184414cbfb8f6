"""The socket's edge: which pages may open it (Origin), how many sockets one user may hold on
a node, and the delivery-latency histogram — against a real server process over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from parley.gateway.origins import OriginPolicy, normalize_origin
from parley.gateway.outbox import Outbox
from tests.support.gateway_helpers import WAIT, RawSocket, metric, new_user, open_log, running_server

# --- the policy itself


def test_origins_are_normalized() -> None:
    assert normalize_origin("HTTPS://Chat.Example.com:443") == "https://chat.example.com"
    assert normalize_origin("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert normalize_origin("http://[::1]:80") == "http://[::1]"
    for bad in ("null", "", "chat.example.com", "ftp://x", "http://", "http://a:99999",
                "http://[::1", "http://a\x00b", "http://\ud800"):
        assert normalize_origin(bad) is None, bad


def test_the_default_is_the_requests_own_host() -> None:
    policy = OriginPolicy([])
    assert policy.allows(None, "chat.example.com")  # not a browser page
    assert policy.allows("https://chat.example.com", "chat.example.com")
    assert policy.allows("https://chat.example.com", "chat.example.com:443")
    assert policy.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not policy.allows("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not policy.allows("https://evil.example", "chat.example.com")
    assert not policy.allows("https://chat.example.com.evil.example", "chat.example.com")
    assert not policy.allows("null", "chat.example.com")
    assert not policy.allows("https://chat.example.com", None)


def test_a_public_url_or_a_list_replaces_the_host_rule() -> None:
    public = OriginPolicy([], public_url="https://chat.example.com")
    assert public.allows("https://chat.example.com", "10.0.0.5:8000")
    assert not public.allows("http://10.0.0.5:8000", "10.0.0.5:8000")
    listed = OriginPolicy(["https://a.example", "http://b.example:8080"],
                          cors_origins=["https://app.example"])
    assert listed.allows("https://A.example:443", "whatever")
    assert listed.allows("http://b.example:8080", "whatever")
    assert listed.allows("https://app.example", "whatever")
    assert not listed.allows("http://b.example", "b.example")
    assert OriginPolicy(["*"]).allows("https://anything.example", None)


# --- a real node


async def upgrade_status(port: int, origin: str) -> tuple[int, dict[str, object]]:
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", origin=origin):  # type: ignore[arg-type]
            return 101, {}
    except InvalidStatus as refused:
        body = json.loads(refused.response.body or b"{}")
        return refused.response.status_code, body


async def test_foreign_origins_are_refused_before_the_upgrade(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        token = await alice.access_token()
        for origin in ("https://evil.example", "null", "http://127.0.0.1:1", "http://a:99999"):
            status, body = await upgrade_status(free_port, origin)
            assert status == 403, origin
            assert body["error"]["code"] == "ORIGIN_NOT_ALLOWED", body  # type: ignore[index]
        # The page this node serves, and a client that is not a page at all.
        own = f"http://127.0.0.1:{free_port}"
        async with connect(f"ws://127.0.0.1:{free_port}/ws", origin=own) as ws:  # type: ignore[arg-type]
            assert (await RawSocket(ws).identify(token))["user"]["username"] == "alice"
        raw = await RawSocket.open(server.base_url)
        await raw.identify(token)
        await raw.close()
        await alice.aclose()


async def test_a_configured_list_is_the_only_way_in(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(
        tmp_path,
        database_url,
        free_port,
        allowed_origins='["https://chat.example.com"]',
    ):
        assert (await upgrade_status(free_port, "https://chat.example.com"))[0] == 101
        assert (await upgrade_status(free_port, f"http://127.0.0.1:{free_port}"))[0] == 403


async def test_a_burst_of_sockets_beyond_the_cap_admits_exactly_the_cap(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    cap = 3
    async with running_server(
        tmp_path, database_url, free_port, gateway_max_sockets_per_user=cap
    ) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        token = await alice.access_token()
        sockets = await asyncio.gather(*(RawSocket.open(server.base_url) for _ in range(12)))
        # Every identify on the wire before any answer comes back.
        await asyncio.gather(*(s.send({"op": "identify", "token": token}) for s in sockets))
        firsts = await asyncio.gather(*(s.recv() for s in sockets))
        admitted = [s for s, frame in zip(sockets, firsts, strict=True) if frame["op"] == "ready"]
        refused = [s for s, frame in zip(sockets, firsts, strict=True) if frame["op"] != "ready"]
        assert len(admitted) == cap
        for frame in firsts:
            if frame["op"] != "ready":
                assert frame["op"] == "error"
                assert frame["error"]["code"] == "TOO_MANY_CONNECTIONS"
        assert set(await asyncio.gather(*(s.closed_with() for s in refused))) == {4029}
        # Another user is not affected; a closed socket frees its slot.
        other = await RawSocket.open(server.base_url)
        await other.identify(await bob.access_token())
        await admitted[0].close()
        await admitted[0].closed_with()

        async def identify_again() -> None:
            while True:
                again = await RawSocket.open(server.base_url)
                await again.send({"op": "identify", "token": token})
                if (await again.recv())["op"] == "ready":
                    await again.close()
                    return
                await again.closed_with()  # the slot is freed once the server saw the close
                await asyncio.sleep(0.05)

        await asyncio.wait_for(identify_again(), WAIT)
        for s in (*admitted[1:], other):
            await s.close()
        await alice.aclose()
        await bob.aclose()


async def test_delivery_latency_is_measured_from_commit_to_socket(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        bob_log = await open_log(bob)
        group = await alice.create_group("latency", [bob.user_id])
        for n in range(5):
            await alice.send_message(group["id"], f"message {n}")
        await bob_log.wait_for(lambda events: len(bob_log.of("message.created")) >= 5)
        async with httpx.AsyncClient(base_url=server.base_url) as http:

            async def delivered() -> float:
                return metric((await http.get("/metrics")).text, "parley_gateway_delivery_seconds_count")

            deadline = asyncio.get_running_loop().time() + WAIT
            while await delivered() < 5:  # the writer observes just after the frame is out
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            text = (await http.get("/metrics")).text
            assert metric(text, "parley_gateway_delivery_seconds_sum") > 0
        await bob_log.close()
        await alice.aclose()
        await bob.aclose()


class Writer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_frames(self, frames: Sequence[str]) -> None:
        self.sent.extend(frames)

    def write_now(self, frames: Sequence[str]) -> bool:
        return False  # never asked: these outboxes have no flusher

    async def close(self, code: int, reason: str) -> None:
        self.sent.append(f"close {code}")


async def test_the_outbox_times_exactly_the_stamped_frames() -> None:
    observed: list[float] = []
    outbox = Outbox(10, observed.append)
    outbox.hold()
    outbox.offer("held")
    outbox.stamp(0.0)  # held frames wait for ready: not timed
    outbox.release("ready")
    outbox.offer("a")
    outbox.offer("b")
    outbox.stamp(time.time() - 0.5)
    outbox.offer("c")
    outbox.close(1000, "bye")
    writer = Writer()
    await outbox.drain(writer)
    assert writer.sent == ["ready", "held", "a", "b", "c", "close 1000"]
    assert len(observed) == 1 and 0.5 <= observed[0] < 60
    dropped = Outbox(10, observed.append)
    dropped.offer("x")
    dropped.stamp(time.time())
    dropped.close(4009, "slow", discard=True)
    await dropped.drain(Writer())
    assert len(observed) == 1  # a dropped frame is never reported


async def test_an_idle_outbox_holds_no_writer_task_and_bursts_keep_their_order() -> None:
    outbox = Outbox(10)
    writer = Writer()
    finished = outbox.start(writer)
    assert outbox.writing is None  # nothing to write: no task
    outbox.offer("a")
    outbox.offer("b")
    assert outbox.writing is not None  # one task for the burst
    for _ in range(100):  # a few loop turns: the writer never waits on a socket here
        if outbox.writing is None:
            break
        await asyncio.sleep(0)
    assert outbox.writing is None  # the queue ran dry: the task ended
    assert writer.sent == ["a", "b"] and not finished.done()
    outbox.offer("c")  # the next burst starts the next task
    outbox.close(1000, "bye")
    await asyncio.wait_for(finished, 5)
    assert writer.sent == ["a", "b", "c", "close 1000"] and outbox.writing is None
    assert outbox.offer("late")  # dropped once closing, never written
    assert writer.sent[-1] == "close 1000"
