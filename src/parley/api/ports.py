"""What the REST routers call: the node's services as the API sees them (no container).

``app`` puts the node's service container on ``app.state``; the routers see it through this
Protocol, which names exactly what they use — the container satisfies it structurally, and
the API imports nothing above itself. A feature whose routes call a new service adds that
service here (mypy then checks the container provides it).
"""

from __future__ import annotations

from typing import Protocol

from parley.config import Settings
from parley.credentials import Credentials
from parley.integrations.bots import Bots
from parley.integrations.commands import Commands
from parley.integrations.webhooks import Webhooks
from parley.lifecycle.erasure import Erasure
from parley.lifecycle.exports import Exports
from parley.lifecycle.retention import Retention
from parley.media.blobstore import BlobStore
from parley.notifications.service import Notifications
from parley.observability.health import ReadinessCheck
from parley.observability.metrics import Metrics
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.accounts import Accounts
from parley.services.administration import Administration
from parley.services.attachments import Attachments
from parley.services.audit import AuditLog
from parley.services.auth import Auth
from parley.services.avatars import Avatars
from parley.services.contacts import Contacts
from parley.services.conversations import Conversations
from parley.services.directory import Directory
from parley.services.e2ee_backup import E2eeBackups
from parley.services.e2ee_devices import E2eeDevices
from parley.services.e2ee_inbox import E2eeInbox
from parley.services.forwarding import Forwarding
from parley.services.invites import Invites
from parley.services.link_previews import LinkPreviews
from parley.services.login import LoginFlow
from parley.services.messages import Messages
from parley.services.pins import Pins
from parley.services.reactions import Reactions
from parley.services.receipts import Receipts
from parley.services.registration import Registration
from parley.services.reports import Reports
from parley.services.search import Search
from parley.services.threads import Threads
from parley.services.two_factor import TwoFactor
from parley.services.uploads import Uploads


class ApiServices(Protocol):
    settings: Settings
    metrics: Metrics
    limiter: RateLimiter
    api_rate: Rate
    registration_rate: Rate
    accounts: Accounts
    auth: Auth
    contacts: Contacts
    conversations: Conversations
    messages: Messages
    reactions: Reactions
    receipts: Receipts
    search: Search
    blobs: BlobStore
    uploads: Uploads
    attachments: Attachments
    link_previews: LinkPreviews
    notifications: Notifications
    retention: Retention
    exports: Exports
    erasure: Erasure
    audit: AuditLog
    login: LoginFlow
    credentials: Credentials
    two_factor: TwoFactor
    administration: Administration
    registration: Registration
    reports: Reports
    threads: Threads
    pins: Pins
    forwarding: Forwarding
    directory: Directory
    invites: Invites
    bots: Bots
    webhooks: Webhooks
    commands: Commands
    e2ee_devices: E2eeDevices
    e2ee_inbox: E2eeInbox
    e2ee_backups: E2eeBackups
    avatars: Avatars

    async def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """Each dependency's check (``/readyz``); ``Degraded`` means serving with less."""
        ...

    async def refresh_metrics(self) -> None:
        """Read the figures that need a round trip, before a scrape."""
        ...
