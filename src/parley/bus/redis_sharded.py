"""The bus's subscriber connection on Redis Cluster: sharded pub/sub (Redis 7).

Plain PUBLISH on a cluster is broadcast to every node of it, so each message costs the
whole cluster's bandwidth; ``SPUBLISH`` goes only to the shard owning the channel's slot,
and ``SSUBSCRIBE`` listens there. Conversations spread over the shards like keys do.

:class:`ShardedSubscription` looks to :class:`~parley.bus.redis.RedisBus` like the one
``PubSub`` it uses on a single Redis (``subscribe``, ``unsubscribe``, ``get_message``,
``ping``, ``aclose``), but holds one connection per shard primary it needs, reads them all
into one queue, and turns ``smessage``/``ssubscribe`` into ``message``/``subscribe``.
Failure is all-or-nothing on purpose: if any shard's connection breaks or falls silent,
``get_message``/``ping`` raise, the bus drops the whole subscription, builds a new one from
a fresh slot map (after a failover or a resharding the slots have moved) and reports the
gap — the sessions then resume by seq. A subscription that healed one shard silently would
lose that shard's envelopes with nobody told.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

# A shard whose connection said nothing (not even to our pings) for this long is lost.
DEAD_AFTER_SECONDS = 3.0
POLL_SECONDS = 0.25
# What the bus reads: sharded kinds under their plain names; pongs so it sees life.
_TYPES = {"smessage": "message", "ssubscribe": "subscribe", "pong": "pong"}


class ShardLost(Exception):
    """A shard's subscriber connection broke or fell silent."""


class ShardedSubscription:
    def __init__(
        self,
        make_cluster: Callable[[], RedisCluster],
        make_node_client: Callable[[str, int], redis.Redis],
    ) -> None:
        self._make_cluster = make_cluster
        self._make_node_client = make_node_client
        self._cluster: RedisCluster | None = None
        self._clients: dict[str, redis.Redis] = {}
        self._pubsubs: dict[str, Any] = {}  # node name -> redis.asyncio PubSub
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._heard: dict[str, float] = {}
        self._owner: dict[bytes, str] = {}  # channel -> node name
        self._opening: dict[str, asyncio.Task[Any]] = {}
        self._queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()

    async def subscribe(self, *channels: bytes) -> None:
        by_slot: dict[int, list[bytes]] = {}
        for channel in channels:
            by_slot.setdefault(key_slot(channel), []).append(channel)
        cluster = await self._slot_map()
        for slot_channels in by_slot.values():
            node = cluster.get_node_from_key(slot_channels[0])  # type: ignore[arg-type]  # keyslot takes bytes
            if node is None:
                raise ShardLost(f"no primary owns the slot of {slot_channels[0]!r}")
            pubsub = await self._pubsub(node.host, int(node.port))
            for channel in slot_channels:
                self._owner[channel] = node.name
            # SSUBSCRIBE takes several channels only when they share a slot.
            await pubsub.ssubscribe(*slot_channels)

    async def unsubscribe(self, channel: bytes) -> None:
        name = self._owner.pop(channel, None)
        pubsub = self._pubsubs.get(name) if name is not None else None
        if pubsub is not None:
            await pubsub.sunsubscribe(channel)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def ping(self) -> None:
        now = time.monotonic()
        for name, pubsub in list(self._pubsubs.items()):
            if now - self._heard.get(name, now) > DEAD_AFTER_SECONDS:
                raise ShardLost(f"no answer from shard {name} for {now - self._heard[name]:.1f}s")
            await pubsub.ping()

    async def aclose(self) -> None:
        for opening in self._opening.values():
            opening.cancel()
        await asyncio.gather(*self._opening.values(), return_exceptions=True)
        self._opening.clear()
        for task in self._readers.values():
            task.cancel()
        await asyncio.gather(*self._readers.values(), return_exceptions=True)
        for pubsub in self._pubsubs.values():
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                await self._cluster.aclose()
        self._readers.clear()
        self._pubsubs.clear()
        self._clients.clear()

    # --- inside

    async def _slot_map(self) -> RedisCluster:
        """The slot map, read once per subscription (a new subscription reads it again)."""
        if self._cluster is None:
            self._cluster = self._make_cluster()
            await self._cluster.initialize()
        return self._cluster

    async def _pubsub(self, host: str, port: int) -> Any:
        """The connection to one shard, opened once however many subscribe at once."""
        name = f"{host}:{port}"
        opening = self._opening.get(name)
        if opening is None:
            opening = self._opening[name] = asyncio.create_task(self._open(name, host, port))
        return await asyncio.shield(opening)

    async def _open(self, name: str, host: str, port: int) -> Any:
        client = self._clients[name] = self._make_node_client(host, port)
        pubsub = client.pubsub()
        await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        self._pubsubs[name] = pubsub
        self._heard[name] = time.monotonic()
        self._readers[name] = asyncio.create_task(
            self._read(name, pubsub), name=f"bus-shard-{name}"
        )
        return pubsub

    async def _read(self, name: str, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=POLL_SECONDS)
                if message is None:
                    continue
                self._heard[name] = time.monotonic()
                translated = _TYPES.get(str(message.get("type")))
                if translated is not None:
                    self._queue.put_nowait({**message, "type": translated})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure loses the whole subscription
            self._queue.put_nowait(ShardLost(f"shard {name}: {type(exc).__name__}: {exc}"))
