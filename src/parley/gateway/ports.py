"""What the gateway calls outside itself — exactly that, and nothing else (no container).

``app`` builds one :class:`GatewayServices` from the node's services (``Container.
gateway_services``) and hands it to the :class:`~parley.gateway.node.Gateway`; the gateway
never sees the database or the container. A feature whose socket methods call a new service
adds that service here (and to ``Container.gateway_services``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from parley.bus.base import Bus
from parley.config import Settings
from parley.errors import ParleyError
from parley.presence.base import PresenceStore
from parley.services.auth import Auth
from parley.services.events import EventBroker
from parley.services.messages import Messages
from parley.services.reactions import Reactions
from parley.services.realtime_reads import RealtimeReads
from parley.services.receipts import Receipts


@dataclass(frozen=True, slots=True)
class GatewayServices:
    settings: Settings
    # identify: the access token → (user, session)
    auth: Auth
    # the call handlers' services (the same ones the REST twins call)
    messages: Messages
    reactions: Reactions
    receipts: Receipts
    # ready, hub subscriptions, the presence audience, last_seen_at
    reads: RealtimeReads
    # service events in (after commit), envelopes out to every node, presence counts
    events: EventBroker
    bus: Bus
    presence_store: PresenceStore
    metrics: CollectorRegistry
    # A backend failure the client should retry (the database is down) as the error to
    # answer with; None for anything else (a bug: INTERNAL_ERROR).
    unavailable: Callable[[BaseException], ParleyError | None]
