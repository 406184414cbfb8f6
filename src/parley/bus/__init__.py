"""Cross-node fan-out (DESIGN §2 "Scale-out"): the :class:`Bus` interface and its backends.

The bus carries :class:`Envelope` objects — an event already serialised into its wire frame,
plus where it goes (a conversation's topic and/or users' topics). A node's hub subscribes
to the topics its local sessions need, reference-counted, and receives every envelope
published to them by any node. ``InProcessBus`` is the single-node default; ``RedisBus``
(``parley.bus.redis``, chosen when ``PARLEY_REDIS_URL`` is set) implements the same
Protocol on Redis pub/sub and passes the same contract tests.
"""

from parley.bus.base import (
    Bus,
    Envelope,
    EnvelopeHandler,
    GapHandler,
    MembershipAction,
    MembershipChange,
    conversation_topic,
    topics_of,
    user_topic,
)
from parley.bus.memory import InProcessBus

__all__ = [
    "Bus",
    "Envelope",
    "EnvelopeHandler",
    "GapHandler",
    "InProcessBus",
    "MembershipAction",
    "MembershipChange",
    "conversation_topic",
    "topics_of",
    "user_topic",
]
