"""The :class:`~parley.bus.base.Bus` on Redis pub/sub: one channel per topic, every node a
subscriber of the topics its local sessions need (DESIGN §2 "Scale-out").

How each guarantee of the contract (``tests/contract/test_bus.py``) is kept:

- **At most once per node.** An envelope with several topics reaches a node once per
  channel it subscribes to; the repeats are dropped by envelope id. A node delivers its own
  envelopes to its local sessions at once, in :meth:`RedisBus.publish` (as the in-process
  bus does), and drops them when Redis echoes them back (each message names its node).
- **Publisher order.** One publisher task sends envelopes in the order ``publish`` was
  called, pipelined on one connection; Redis delivers one connection's publishes in order,
  and one reader task hands them to the handler in that order.
- **Reference-counted subscriptions.** Redis hears SUBSCRIBE on the first reference and
  UNSUBSCRIBE on the last. ``subscribe`` returns once Redis has confirmed the channel, so
  whatever is published after it returns reaches this node — the hub relies on this when
  it subscribes a session *before* reading its conversations.
- **A publish never fails a committed change.** ``publish`` only queues; a batch Redis
  refuses is dropped, logged and counted (``parley_bus_publish_failures_total``). Clients
  close the gap by seq from the database.
- **Redis going away.** The reader notices (a dropped socket, or no answer to its pings
  within :data:`DEAD_AFTER_SECONDS`), reconnects with backoff and resubscribes every wanted
  channel. Envelopes published meanwhile are lost for this node, so once resubscribed it
  calls ``on_gap``: the gateway then has its sessions resume (DESIGN §2, "the seq exposes
  the gap").

Only this module (and the other Redis adapters) imports ``redis``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from parley.background import cancel_and_wait
from parley.bus.base import Envelope, EnvelopeHandler, GapHandler, topics_of
from parley.observability.metrics import BusMetrics
from parley.redis_clients import cluster_client, redis_client
from parley.redis_urls import RedisTopology, parse_redis_url

log = logging.getLogger(__name__)

# The reader pings Redis this often on its subscriber connection; a connection that has
# not answered anything for DEAD_AFTER_SECONDS is treated as lost (a silent network
# partition never closes the socket, so waiting for an error is not enough).
PING_INTERVAL_SECONDS = 1.0
DEAD_AFTER_SECONDS = 3.0
# get_message waits at most this long, so pings and the dead check run on time.
POLL_SECONDS = 0.25
# Reconnect backoff: fast first (a Redis restart takes about a second), capped low enough
# that a node resumes real-time delivery soon after Redis is back.
RECONNECT_INITIAL_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 2.0
# How long subscribe waits for Redis to confirm; past it the channel is still wanted and is
# resubscribed with everything else if the connection turns out to be gone.
SUBSCRIBE_TIMEOUT_SECONDS = 2.0
# Envelopes waiting for the publisher task. Past this (Redis stalled for long), the oldest
# are dropped and counted as failed: they are committed already, clients fill by seq.
MAX_QUEUED_ENVELOPES = 10_000
# Envelopes per pipelined round trip.
MAX_BATCH = 256
# Ids remembered to drop the second copy of a multi-topic envelope. The copies are
# published back to back by one pipeline, so they arrive close together; this covers
# thousands of envelopes from other nodes arriving in between.
RECENT_IDS = 16_384
# Channels per SUBSCRIBE command when resubscribing everything at once.
SUBSCRIBE_CHUNK = 512
# Warnings about an unreachable Redis are logged at most this often (one per outage,
# not one per envelope).
WARN_EVERY_SECONDS = 5.0

# close() lets queued envelopes go out for at most this long.
CLOSE_DRAIN_SECONDS = 1.0

SEPARATOR = b"|"


def bus_client_options(retries: int = 1) -> dict[str, Any]:
    """See :func:`bus_client`."""
    return {
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
        "retry": Retry(NoBackoff(), retries),
        "health_check_interval": 0,
    }


def bus_client(url: str, *, retries: int = 1) -> redis.Redis:
    """A client for the real-time side (bus, presence): short timeouts, and at most one
    immediate retry — enough for a pooled connection that went stale when Redis restarted,
    where redis-py's default would retry with backoff for seconds. No redis-py health
    checks: the bus reader pings by itself.

    The subscriber needs ``retries=0``: on a retry redis-py reconnects and resubscribes
    silently, and the envelopes lost in between would go unnoticed (no gap reported)."""
    return redis_client(url, **bus_client_options(retries))


def redis_bus(url: str, *, prefix: str, node_id: str, metrics: BusMetrics | None = None) -> RedisBus:
    """The bus for ``PARLEY_REDIS_URL`` whatever its topology: plain pub/sub on one server
    or behind Sentinel, sharded pub/sub on Redis Cluster."""
    location = parse_redis_url(url)
    if location.topology is not RedisTopology.CLUSTER:
        return RedisBus(
            bus_client(url),
            prefix=prefix,
            node_id=node_id,
            subscriber=bus_client(url, retries=0),
            metrics=metrics,
        )
    from parley.bus.redis_sharded import ShardedSubscription

    def shard_client(host: str, port: int) -> redis.Redis:
        return redis.Redis(
            host=host,
            port=port,
            username=location.username,
            password=location.password,
            **bus_client_options(retries=0),
        )

    def open_sharded() -> ShardedSubscription:
        return ShardedSubscription(
            lambda: cluster_client(location, **bus_client_options(retries=0)), shard_client
        )

    publisher = cluster_client(location, **bus_client_options())
    return RedisBus(
        publisher,  # type: ignore[arg-type]  # the cluster client has the calls the bus makes
        prefix=prefix,
        node_id=node_id,
        metrics=metrics,
        sharded=open_sharded,
    )


class BusUnavailable(Exception):
    """The subscriber connection is down: this node receives nothing from other nodes."""


class _Stalled(Exception):
    """Redis stopped answering on the subscriber connection."""


class RedisBus:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        node_id: str,
        subscriber: redis.Redis | None = None,
        metrics: BusMetrics | None = None,
        sharded: Callable[[], Any] | None = None,
    ) -> None:
        """``client`` publishes; ``subscriber`` (see :func:`bus_client`) holds the one
        subscribed connection, and must not retry inside redis-py.

        On Redis Cluster, ``client`` is a cluster client and ``sharded`` opens a
        :class:`~parley.bus.redis_sharded.ShardedSubscription`: envelopes go out with
        SPUBLISH and are read with SSUBSCRIBE, each channel on the shard owning its slot."""
        self._client = client
        self._subscriber = subscriber or client
        self._open_sharded = sharded
        self._prefix = f"{prefix}:bus:"
        self._node = node_id.encode()
        self._control = (self._prefix + "node:" + node_id).encode()
        self._metrics = metrics
        self._handler: EnvelopeHandler | None = None
        self._on_gap: GapHandler | None = None
        self._references: collections.Counter[str] = collections.Counter()
        # channel → resolved once Redis confirmed it on the current connection
        self._confirmed: dict[bytes, asyncio.Future[None]] = {}
        self._pubsub: Any = None  # the current subscriber connection (redis.asyncio.PubSub)
        self._connected = False
        self._ever_connected = False
        self._lost_since: float | None = None
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._outgoing: collections.deque[tuple[Envelope, float]] = collections.deque()
        self._wake_publisher = asyncio.Event()
        self._sending = False
        self._inbox: asyncio.Queue[Envelope] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._last_warning: dict[str, float] = {}
        self.published = 0
        self.publish_failures = 0
        self.reconnects = 0

    # --- the Bus interface

    async def start(self, handler: EnvelopeHandler, on_gap: GapHandler | None = None) -> None:
        self._handler = handler
        self._on_gap = on_gap
        self._closed = False
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._read_loop(), name="bus-reader"),
                asyncio.create_task(self._deliver_loop(), name="bus-deliver"),
                asyncio.create_task(self._publish_loop(), name="bus-publisher"),
            ]
        # Give the first connection a moment, so a node starts with its bus up; a Redis
        # that is down at start is not fatal: the reader keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_connected(), SUBSCRIBE_TIMEOUT_SECONDS)

    async def publish(self, envelope: Envelope) -> None:
        if self._closed or self._handler is None:
            return
        if any(self._references[topic] > 0 for topic in topics_of(envelope)):
            await self._deliver(envelope)  # this node's own sessions: no round trip
        if len(self._outgoing) >= MAX_QUEUED_ENVELOPES:
            self._outgoing.popleft()
            self._count_failures(1)
        self._outgoing.append((envelope, time.perf_counter()))
        self._wake_publisher.set()

    async def subscribe(self, topic: str) -> None:
        self._references[topic] += 1
        channel = self._channel(topic)
        pubsub = self._pubsub
        if pubsub is None:
            return  # no connection: the reader subscribes every wanted channel when back
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
            try:
                await pubsub.subscribe(channel)
            except (RedisError, OSError):
                return  # the reader sees the same failure and resubscribes everything
        if not confirmed.done():
            # Another session subscribing the same topic waits for the same confirmation:
            # it too may read the database only once the channel is live.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_SECONDS)

    async def unsubscribe(self, topic: str) -> None:
        count = self._references.get(topic, 0)
        if count > 1:
            self._references[topic] = count - 1
            return
        if count == 0:
            return
        del self._references[topic]
        channel = self._channel(topic)
        confirmed = self._confirmed.pop(channel, None)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)  # nobody may be left waiting on a dropped channel
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(channel)
            except (RedisError, OSError):
                pass  # a new connection subscribes only what is still wanted

    def subscription_count(self) -> int:
        return len(self._references)

    async def aclose_clients(self) -> None:
        """Close the Redis clients (after :meth:`close`; the owner may share them)."""
        await self._client.aclose()
        if self._subscriber is not self._client:
            await self._subscriber.aclose()

    async def close(self) -> None:
        self._closed = True
        self._handler = None
        # What was published just before shutdown still goes out, briefly.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), CLOSE_DRAIN_SECONDS)
        await cancel_and_wait(self._tasks)
        self._tasks = []
        self._references.clear()
        self._confirmed.clear()
        self._outgoing.clear()

    # --- health (readiness, metrics)

    @property
    def connected(self) -> bool:
        """Whether this node currently receives other nodes' envelopes."""
        return self._connected

    async def check(self) -> None:
        """Readiness: raises :class:`BusUnavailable` while the subscriber connection is down."""
        if not self._connected:
            since = self._lost_since
            lost = "" if since is None else f" for {time.monotonic() - since:.1f}s"
            raise BusUnavailable(f"not subscribed to Redis{lost}")

    # --- publishing

    async def _publish_loop(self) -> None:
        while True:
            await self._wake_publisher.wait()
            self._wake_publisher.clear()
            while self._outgoing:
                batch = [
                    self._outgoing.popleft()
                    for _ in range(min(MAX_BATCH, len(self._outgoing)))
                ]
                self._sending = True
                try:
                    await self._send(batch)
                finally:
                    self._sending = False

    async def _send(self, batch: list[tuple[Envelope, float]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        try:
            for envelope, _ in batch:
                data = self._node + SEPARATOR + envelope.encode()
                for topic in topics_of(envelope):
                    if self._open_sharded is None:
                        pipe.publish(self._channel(topic), data)
                    else:
                        pipe.spublish(self._channel(topic), data)
            await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the changes are committed: never raise
            self._count_failures(len(batch))
            self._warn("bus publish failed; clients will fill the gap by seq", exc)
            return
        finally:
            with contextlib.suppress(Exception):
                await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        done = time.perf_counter()
        self.published += len(batch)
        if self._metrics is not None:
            for _, queued_at in batch:
                self._metrics.publish_seconds.observe(done - queued_at)

    async def flush(self) -> None:
        """Wait until every envelope published so far was handed to Redis (or dropped)."""
        while (self._outgoing or self._sending) and self._tasks:
            await asyncio.sleep(0.005)

    def _count_failures(self, count: int) -> None:
        self.publish_failures += count
        if self._metrics is not None:
            self._metrics.publish_failures.inc(count)

    # --- receiving

    async def _read_loop(self) -> None:
        attempt = 0
        while True:
            pubsub = self._subscriber.pubsub() if self._open_sharded is None else self._open_sharded()
            try:
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke, reconnect
                if self._connected:
                    attempt = 0
                    self._lost_since = time.monotonic()
                    if self._metrics is not None:
                        self._metrics.reconnects.inc()
                    self.reconnects += 1
                    self._warn("bus lost its Redis subscription; reconnecting", exc, force=True)
                else:
                    self._warn("bus cannot subscribe on Redis; retrying", exc)
            finally:
                self._set_connected(False)
                self._pubsub = None
                for future in self._confirmed.values():
                    if not future.done():
                        future.set_result(None)  # never block a session on a dead connection
                self._confirmed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            if self._ever_connected and self._lost_since is None:
                self._lost_since = time.monotonic()
            ceiling = min(RECONNECT_MAX_SECONDS, RECONNECT_INITIAL_SECONDS * 2**attempt)
            await asyncio.sleep(ceiling / 2 + random.uniform(0, ceiling / 2))
            attempt = min(attempt + 1, 10)

    async def _listen(self, pubsub: Any) -> None:
        # The snapshot of wanted channels and publishing ``_pubsub`` happen with no await in
        # between: a subscribe() after this point sends its own SUBSCRIBE on this connection.
        loop = asyncio.get_running_loop()
        wanted = [self._channel(topic) for topic in self._references]
        for channel in wanted:
            self._confirmed[channel] = loop.create_future()
        self._pubsub = pubsub
        had_references = bool(wanted)
        pending = {self._control, *wanted}
        channels = [self._control, *wanted]
        for start in range(0, len(channels), SUBSCRIBE_CHUNK):
            await pubsub.subscribe(*channels[start : start + SUBSCRIBE_CHUNK])
        last_heard = last_ping = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                kind = message["type"]
                if kind == "message":
                    self._receive(message["channel"], message["data"])
                elif kind == "subscribe":
                    channel = message["channel"]
                    future = self._confirmed.get(channel)
                    if future is not None and not future.done():
                        future.set_result(None)
                    if pending:
                        pending.discard(channel)
                        if not pending:
                            await self._resubscribed(had_references)
            elif now - last_heard > DEAD_AFTER_SECONDS:
                raise _Stalled(f"no answer from Redis for {now - last_heard:.1f}s")
            if now - last_ping >= PING_INTERVAL_SECONDS:
                last_ping = now
                await pubsub.ping()

    async def _resubscribed(self, had_references: bool) -> None:
        """Every wanted channel is live on a new connection. A gap if there was a
        connection before, or sessions subscribed before there was any (Redis was down
        when this node started)."""
        gap = self._ever_connected or had_references
        self._ever_connected = True
        self._lost_since = None
        self._set_connected(True)
        if gap:
            log.warning("bus resubscribed after losing Redis; sessions resume by seq")
            if self._on_gap is not None:
                task = asyncio.create_task(self._call_on_gap(), name="bus-gap")
                self._tasks.append(task)
                task.add_done_callback(self._forget_task)

    async def _call_on_gap(self) -> None:
        assert self._on_gap is not None
        try:
            await self._on_gap()
        except Exception:
            log.exception("bus gap handler failed")

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _receive(self, channel: bytes, data: bytes) -> None:
        node, separator, body = data.partition(SEPARATOR)
        if not separator or node == self._node:
            return  # our own envelope: delivered locally when it was published
        topic = channel[len(self._prefix) :].decode()
        if self._references.get(topic, 0) <= 0:
            return  # unsubscribed while it was in flight
        try:
            envelope = Envelope.decode(body)
        except (ValueError, KeyError, TypeError):
            log.error("undecodable bus message dropped", extra={"channel": channel.decode()})
            return
        if len(envelope.user_ids) + (envelope.conversation_id is not None) > 1:
            if envelope.id in self._recent:
                return  # the copy from another of its topics
            self._recent[envelope.id] = None
            if len(self._recent) > RECENT_IDS:
                self._recent.popitem(last=False)
        self._inbox.put_nowait(envelope)

    async def _deliver_loop(self) -> None:
        # Separate from the reader: the handler may subscribe (a member joined), and the
        # confirmation it waits for is read by the reader.
        while True:
            envelope = await self._inbox.get()
            await self._deliver(envelope)

    async def _deliver(self, envelope: Envelope) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            await handler(envelope)
        except Exception:  # one bad delivery must not stop the others
            log.exception("bus handler failed", extra={"event_type": envelope.type})

    # --- helpers

    def _channel(self, topic: str) -> bytes:
        return (self._prefix + topic).encode()

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if self._metrics is not None:
            self._metrics.connected.set(1 if connected else 0)

    async def _wait_connected(self) -> None:
        while not self._connected:
            await asyncio.sleep(0.01)

    def _warn(self, message: str, exc: BaseException, *, force: bool = False) -> None:
        """Log ``message`` at most once per WARN_EVERY_SECONDS (each message on its own)."""
        now = time.monotonic()
        last = self._last_warning.get(message)
        if force or last is None or now - last >= WARN_EVERY_SECONDS:
            self._last_warning[message] = now
            log.warning(message, extra={"error": f"{type(exc).__name__}: {exc}"})
