"""The in-process :class:`~parley.bus.base.Bus`: one node, no network.

Publishing calls the handler directly, so delivery happens before ``publish`` returns and
publisher order is trivially kept. The subscription table is kept exactly like a networked
backend keeps it, so that the hub behaves the same on both and the contract tests mean
something here too.
"""

from __future__ import annotations

import logging
from collections import Counter

from parley.bus.base import Envelope, EnvelopeHandler, GapHandler, topics_of

log = logging.getLogger(__name__)


class InProcessBus:
    def __init__(self) -> None:
        self._handler: EnvelopeHandler | None = None
        self._references: Counter[str] = Counter()
        self._closed = False

    async def start(self, handler: EnvelopeHandler, on_gap: GapHandler | None = None) -> None:
        # on_gap is never called: a direct call cannot lose an envelope.
        self._handler = handler
        self._closed = False

    async def publish(self, envelope: Envelope) -> None:
        handler = self._handler
        if handler is None or self._closed:
            return
        if not any(self._references[topic] > 0 for topic in topics_of(envelope)):
            return
        try:
            await handler(envelope)
        except Exception:  # one bad delivery must not fail the committed change behind it
            log.exception("bus handler failed", extra={"event_type": envelope.type})

    async def subscribe(self, topic: str) -> None:
        self._references[topic] += 1

    async def unsubscribe(self, topic: str) -> None:
        count = self._references.get(topic, 0)
        if count <= 1:
            self._references.pop(topic, None)
        else:
            self._references[topic] = count - 1

    def subscription_count(self) -> int:
        return len(self._references)

    async def close(self) -> None:
        self._closed = True
        self._handler = None
        self._references.clear()
