"""The service container: every long-lived object of one Parley node, built from Settings.

``app`` (HTTP and WebSocket wiring) and ``cli`` (commands) build one of these; nothing else
creates services. Backends are chosen here, once: SQLite or PostgreSQL, memory or Redis.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from parley.backends import Backends, build_backends
from parley.bus import Bus, InProcessBus
from parley.config import Settings
from parley.gateway.presence_store import MemoryPresenceStore, PresenceStore
from parley.integrations.bots import Bots
from parley.integrations.commands import Commands
from parley.integrations.deliveries import DeliveryPolicy, OutgoingWebhooks
from parley.integrations.webhooks import Webhooks
from parley.jobs.queue import JobQueue
from parley.jobs.scheduler import Scheduler
from parley.media.blobstore import BlobStore
from parley.media.factory import build_blob_store
from parley.media.image_workers import ImageWorkers, WorkerLimits
from parley.notifications.service import Notifications, build_notifications
from parley.observability.metrics import Metrics
from parley.outbound import OutboundClient, policy_from
from parley.security.passwords import PasswordHasher
from parley.security.login_throttle import LoginPolicy, LoginThrottle
from parley.security.ratelimit import Backoff, Rate, RateLimiter
from parley.security.tokens import TokenSigner
from parley.services.accounts import Accounts
from parley.services.attachment_urls import AttachmentUrls, bind_urls
from parley.services.attachments import Attachments, register_attachment_jobs
from parley.services.auth import Auth
from parley.services.contacts import Contacts
from parley.services.conversations import ConversationLimits, Conversations
from parley.services.events import EventBroker
from parley.services.link_previews import LinkPreviews, register_link_preview_jobs
from parley.services.message_sending import SendLimits
from parley.services.messages import Messages
from parley.services.reactions import Reactions
from parley.services.receipts import Receipts
from parley.services.search import Search
from parley.services.upload_sink import UploadLimits
from parley.services.uploads import Uploads
from parley.store.db import Database

ReadinessCheck = Callable[[], Awaitable[object]]
# A scrape waits this long at most for the job queue's figures and each dependency.
METRICS_TIMEOUT_SECONDS = 1.0


@dataclass
class Container:
    settings: Settings
    db: Database
    metrics: Metrics
    limiter: RateLimiter
    events: EventBroker
    accounts: Accounts
    auth: Auth
    contacts: Contacts
    conversations: Conversations
    messages: Messages
    reactions: Reactions
    receipts: Receipts
    search: Search
    api_rate: Rate
    registration_rate: Rate
    jobs: JobQueue
    scheduler: Scheduler
    backends: Backends
    blobs: BlobStore
    uploads: Uploads
    attachments: Attachments
    # Preferences, email addresses, Web Push and digests (DESIGN §6.2).
    notifications: Notifications
    # Every request to a URL someone else chose (push services, previews, webhooks).
    outbound: OutboundClient
    link_previews: LinkPreviews
    # Bot accounts, webhooks and slash commands (DESIGN §6.6).
    bots: Bots
    webhooks: Webhooks
    outgoing_webhooks: OutgoingWebhooks
    commands: Commands
    # Cross-node fan-out and presence; the gateway runs them. In-process, or Redis (chosen
    # by build_backends).
    bus: Bus = field(default_factory=InProcessBus)
    presence_store: PresenceStore = field(default_factory=MemoryPresenceStore)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """The database and the bus, reported separately (and Redis itself when used). A
        check raising ``backends.Degraded`` degrades the node without making it unready."""
        return {"database": self.db.ping, **self.backends.checks}

    async def refresh_metrics(self) -> None:
        """Figures that need a round trip, read at scrape time: the job queue's, whether each
        dependency answers, and the data directory's disk. A scrape never fails for them."""
        checks = await self.readiness_checks()
        answered = await asyncio.gather(
            self._jobs_stats(),
            *(asyncio.wait_for(check(), METRICS_TIMEOUT_SECONDS) for check in checks.values()),
            return_exceptions=True,
        )
        for name, outcome in zip(checks, answered[1:], strict=True):
            up = 0 if isinstance(outcome, BaseException) else 1
            self.metrics.health.dependency_up.labels(name).set(up)
        try:
            usage = await asyncio.to_thread(shutil.disk_usage, self.settings.data_dir)
        except OSError:
            return
        self.metrics.health.data_dir_free.set(usage.free)
        self.metrics.health.data_dir_size.set(usage.total)

    async def _jobs_stats(self) -> None:
        try:
            stats = await asyncio.wait_for(self.jobs.stats(), METRICS_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - a scrape must not fail with Redis down
            return
        self.metrics.jobs.queued.set(stats.queued)
        self.metrics.jobs.pending.set(stats.in_flight)
        self.metrics.jobs.dead.set(stats.dead)

    async def start(self) -> None:
        """Start background work (jobs, periodic sweeps). Called once per process."""
        await self.jobs.start()
        await self.scheduler.start()

    async def close(self) -> None:
        await self.scheduler.close()
        await self.messages.close()  # flush the group-commit batch before anything closes
        await self.notifications.trigger.close()  # its jobs for that batch are queued
        await self.jobs.close()
        await self.notifications.close()
        for closer in reversed(self._closers):
            await closer()
        for closer in reversed(self.backends.closers):
            await closer()
        await self.db.dispose()


def login_policy(settings: Settings) -> LoginPolicy:
    """The failed-login policy of docs/security.md, from settings."""

    def backoff(free: int) -> Backoff:
        return Backoff(
            free=free,
            base_seconds=settings.login_backoff_base_seconds,
            max_seconds=settings.login_backoff_max_seconds,
            forget_seconds=settings.login_failure_window_seconds,
        )

    return LoginPolicy(
        pair=backoff(settings.login_failures_allowed),
        address=backoff(settings.login_address_failures_allowed),
        username=backoff(settings.login_username_failures_allowed),
    )


def build_container(settings: Settings) -> Container:
    db = Database(
        settings.effective_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.database_pool_size,
    )
    metrics = Metrics()
    metrics.watch_pool(db.pool_status)
    backends = build_backends(settings, metrics)
    limiter = backends.limiter
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    signer = TokenSigner(
        settings.signing_secret(),
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        device_ttl=timedelta(days=settings.login_device_token_days),
    )
    events = EventBroker()
    accounts = Accounts(db, hasher, events)
    auth = Auth(
        db,
        hasher,
        signer,
        LoginThrottle(limiter, login_policy(settings)),
        events,
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
        reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
    )
    messages = Messages(
        db,
        events,
        limiter,
        SendLimits(
            max_chars=settings.max_message_chars,
            user_rate=Rate(settings.message_rate_per_second, settings.message_burst),
            conversation_rate=Rate(
                settings.conversation_message_rate_per_second, settings.conversation_message_burst
            ),
            group_commit_window_seconds=settings.group_commit_window_ms / 1000,
            group_commit_max_batch=settings.group_commit_max_batch,
            max_attachments=settings.max_attachments_per_message,
        ),
        metrics,
    )
    jobs = backends.jobs
    scheduler = Scheduler(jobs)
    blobs = build_blob_store(settings)
    outbound = OutboundClient(policy_from(settings))
    attachment_urls = AttachmentUrls(
        settings.signing_secret(), ttl_seconds=settings.attachment_url_ttl_seconds
    )
    bind_urls(db, attachment_urls)  # message payloads carry signed attachment URLs
    image_workers = ImageWorkers(
        WorkerLimits(
            workers=settings.image_processing_concurrency,
            memory_bytes=settings.image_worker_memory_mb * 1024 * 1024,
            timeout_seconds=settings.image_worker_timeout_seconds,
        )
    )
    uploads = Uploads(
        db,
        blobs,
        attachment_urls,
        UploadLimits(
            max_attachment_bytes=settings.max_attachment_bytes,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_image_total_pixels=settings.max_image_total_pixels,
        ),
        temp_dir=settings.data_dir / "tmp" / "uploads",
        image_workers=image_workers,
    )
    attachments = Attachments(
        db,
        blobs,
        attachment_urls,
        jobs,
        unclaimed_ttl=timedelta(seconds=settings.unclaimed_upload_ttl_seconds),
    )
    events.add_listener(attachments.on_events)  # a deleted message's files go at once
    link_previews = LinkPreviews(
        db,
        blobs,
        outbound,
        jobs,
        events,
        enabled=settings.link_previews,
        ttl_seconds=settings.link_preview_ttl_seconds,
        max_image_pixels=settings.max_image_pixels,
    )
    events.add_listener(link_previews.on_events)  # fetched after the commit, as a job
    register_link_preview_jobs(jobs, link_previews)
    register_attachment_jobs(
        jobs,
        scheduler,
        attachments,
        uploads,
        every_seconds=settings.attachment_sweep_interval_seconds,
    )
    conversations = Conversations(
        db,
        events,
        ConversationLimits(
            max_group_members=settings.max_group_members,
            dm_requires_contact=settings.dm_requires_contact,
        ),
    )
    webhooks = Webhooks(
        db,
        conversations,
        messages,
        limiter,
        policy=outbound.policy,
        rate=Rate(settings.webhook_rate_per_minute / 60, settings.webhook_burst),
    )
    outgoing_webhooks = OutgoingWebhooks(
        db,
        jobs,
        outbound,
        messages,
        DeliveryPolicy(
            max_attempts=settings.webhook_max_attempts,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            max_failures=settings.webhook_max_failures,
        ),
        metrics.webhooks,
    )
    webhooks.on_change.append(outgoing_webhooks.changed)
    events.add_listener(outgoing_webhooks.on_events)  # queued after the commit, as jobs
    outgoing_webhooks.register(jobs)
    notifications = build_notifications(
        settings, db, events, jobs, scheduler, metrics, limiter, outbound
    )
    return Container(
        settings=settings,
        db=db,
        metrics=metrics,
        limiter=limiter,
        events=events,
        accounts=accounts,
        auth=auth,
        contacts=Contacts(db, events),
        conversations=conversations,
        messages=messages,
        reactions=Reactions(db, events),
        receipts=Receipts(db, events),
        search=Search(db),
        api_rate=Rate(settings.api_rate_per_second, settings.api_burst),
        registration_rate=Rate.per_window(
            settings.registrations_per_address, settings.registration_window_seconds
        ),
        jobs=jobs,
        scheduler=scheduler,
        backends=backends,
        blobs=blobs,
        uploads=uploads,
        attachments=attachments,
        link_previews=link_previews,
        bots=Bots(db, auth, accounts, max_per_owner=settings.max_bots_per_user),
        webhooks=webhooks,
        outgoing_webhooks=outgoing_webhooks,
        commands=Commands(
            db,
            accounts,
            conversations,
            messages,
            notifications.settings,
            events,
            outbound,
            limiter,
        ),
        notifications=notifications,
        outbound=outbound,
        bus=backends.bus,
        presence_store=backends.presence,
        _closers=[blobs.close, image_workers.close, outbound.close],
    )
