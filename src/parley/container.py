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
from parley.credentials import Credentials
from parley.gateway.ports import GatewayServices
from parley.integrations.bots import Bots
from parley.integrations.commands import Commands
from parley.integrations.deliveries import DeliveryPolicy, OutgoingWebhooks
from parley.integrations.webhooks import Webhooks
from parley.jobs.queue import JobQueue
from parley.jobs.scheduler import Scheduler
from parley.lifecycle.erasure import Erasure, register_erasure_jobs
from parley.lifecycle.exports import Exports, register_export_jobs
from parley.lifecycle.retention import Retention, RetentionPolicy, register_retention_jobs
from parley.media.blobstore import BlobStore
from parley.media.factory import build_blob_store
from parley.media.image_workers import ImageWorkers, WorkerLimits
from parley.notifications.email_kit import EmailKit
from parley.notifications.service import Notifications, build_notifications
from parley.observability.health import ReadinessCheck
from parley.observability.metrics import Metrics
from parley.outbound import OutboundClient, policy_from
from parley.presence.base import PresenceStore
from parley.presence.memory import MemoryPresenceStore
from parley.security.login_throttle import LoginPolicy, LoginThrottle
from parley.security.passwords import PasswordHasher
from parley.security.ratelimit import Backoff, Rate, RateLimiter
from parley.security.tokens import TokenSigner
from parley.services.accounts import Accounts
from parley.services.administration import Administration
from parley.services.attachment_urls import AttachmentUrls
from parley.services.attachments import Attachments, register_attachment_jobs
from parley.services.audit import AuditLog
from parley.services.auth import Auth
from parley.services.avatars import Avatars
from parley.services.contacts import Contacts
from parley.services.conversation_rules import ConversationLimits
from parley.services.conversations import Conversations
from parley.services.directory import Directory
from parley.services.e2ee_backup import E2eeBackups
from parley.services.e2ee_devices import E2eeDevices
from parley.services.e2ee_inbox import E2eeInbox
from parley.services.events import EventBroker
from parley.services.forwarding import Forwarding
from parley.services.invites import Invites
from parley.services.link_previews import LinkPreviews, register_link_preview_jobs
from parley.services.login import LoginFlow
from parley.services.message_sending import SendLimits
from parley.services.messages import Messages
from parley.services.pins import Pins
from parley.services.reactions import Reactions
from parley.services.realtime_reads import RealtimeReads
from parley.services.receipts import Receipts
from parley.services.registration import Registration
from parley.services.reports import Reports
from parley.services.search import Search
from parley.services.search_indexer import SearchIndexer
from parley.services.threads import Threads
from parley.services.two_factor import TwoFactor
from parley.services.upload_sink import UploadLimits
from parley.services.uploads import Uploads
from parley.store.db import Database
from parley.store.failures import unavailable

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
    # Indexes sent messages in batches after their commit (migration 0017).
    search_indexer: SearchIndexer
    # Threads, pins, forwarding, public groups and invite links (DESIGN §6.5, §6.3).
    threads: Threads
    pins: Pins
    forwarding: Forwarding
    directory: Directory
    invites: Invites
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
    # Data lifecycle (DESIGN §6.4): retention, exports, erasure.
    retention: Retention
    exports: Exports
    erasure: Erasure
    # Accounts and administration (DESIGN §6.3).
    audit: AuditLog
    login: LoginFlow
    credentials: Credentials
    two_factor: TwoFactor
    administration: Administration
    registration: Registration
    reports: Reports
    # Bot accounts, webhooks and slash commands (DESIGN §6.6).
    bots: Bots
    webhooks: Webhooks
    outgoing_webhooks: OutgoingWebhooks
    commands: Commands
    # End-to-end encryption's server side (DESIGN §6.1): public keys, claims.
    e2ee_devices: E2eeDevices
    e2ee_inbox: E2eeInbox
    e2ee_backups: E2eeBackups
    avatars: Avatars
    # Cross-node fan-out and presence; the gateway runs them. In-process, or Redis (chosen
    # by build_backends).
    bus: Bus = field(default_factory=InProcessBus)
    presence_store: PresenceStore = field(default_factory=MemoryPresenceStore)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def gateway_services(self) -> GatewayServices:
        """Exactly the services the real-time gateway calls."""
        return GatewayServices(
            settings=self.settings,
            auth=self.auth,
            messages=self.messages,
            reactions=self.reactions,
            receipts=self.receipts,
            reads=RealtimeReads(self.db, self.attachments.urls),
            events=self.events,
            bus=self.bus,
            presence_store=self.presence_store,
            metrics=self.metrics.registry,
            unavailable=unavailable,
        )

    async def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """The database and the bus, reported separately (and Redis itself when used). A
        check raising ``observability.health.Degraded`` degrades the node without making it unready."""
        return {"database": self.db.ping, **self.backends.checks}

    async def refresh_metrics(self) -> None:
        """Figures that need a round trip, read at scrape time: the job queue's, whether each
        dependency answers, and the data directory's disk. A scrape never fails for them."""
        checks = await self.readiness_checks()
        answered = await asyncio.gather(
            self._jobs_stats(),
            self._search_index_stats(),
            *(asyncio.wait_for(check(), METRICS_TIMEOUT_SECONDS) for check in checks.values()),
            return_exceptions=True,
        )
        for name, outcome in zip(checks, answered[2:], strict=True):
            up = 0 if isinstance(outcome, BaseException) else 1
            self.metrics.health.dependency_up.labels(name).set(up)
        try:
            usage = await asyncio.to_thread(shutil.disk_usage, self.settings.data_dir)
        except OSError:
            return
        self.metrics.health.data_dir_free.set(usage.free)
        self.metrics.health.data_dir_size.set(usage.total)

    async def _search_index_stats(self) -> None:
        try:
            await asyncio.wait_for(self.search_indexer.refresh_metrics(), METRICS_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - a scrape must not fail with the database away
            return

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
        self.search_indexer.start()

    async def close(self) -> None:
        await self.scheduler.close()
        await self.messages.close()  # flush the group-commit batch before anything closes
        await self.notifications.trigger.close()  # its jobs for that batch are queued
        await self.search_indexer.close()  # what is left waits, durable, for the next start
        await self.jobs.close()
        await self.notifications.close()
        await self.auth.close()
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
        replica_urls=settings.effective_replica_urls,
    )
    metrics = Metrics()
    metrics.watch_pool(db.pool_status, db.read_sources)
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
    # Signs the attachment and preview image URLs in message payloads: passed to every
    # service that reads messages.
    attachment_urls = AttachmentUrls(
        settings.signing_secret(), ttl_seconds=settings.attachment_url_ttl_seconds
    )
    accounts = Accounts(db, hasher, events)
    auth = Auth(
        db,
        hasher,
        signer,
        LoginThrottle(limiter, login_policy(settings)),
        events,
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
        reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
        session_cache_seconds=settings.session_check_cache_seconds,
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
            max_ciphertext_chars=settings.e2ee_max_ciphertext_chars,
        ),
        metrics,
        attachment_urls,
    )
    jobs = backends.jobs
    scheduler = Scheduler(jobs)
    blobs = build_blob_store(settings)
    outbound = OutboundClient(policy_from(settings))
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
    search_indexer = SearchIndexer(db, metrics.search_index)
    events.add_listener(search_indexer.on_events)  # a send is indexed at once, in a batch
    link_previews = LinkPreviews(
        db,
        blobs,
        outbound,
        jobs,
        events,
        enabled=settings.link_previews,
        ttl_seconds=settings.link_preview_ttl_seconds,
        max_image_pixels=settings.max_image_pixels,
        urls=attachment_urls,
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
    conversations_service = Conversations(
        db,
        events,
        ConversationLimits(
            max_group_members=settings.max_group_members,
            dm_requires_contact=settings.dm_requires_contact,
            e2ee=settings.e2ee,
        ),
        attachment_urls,
    )
    retention = Retention(
        db,
        blobs,
        events,
        jobs,
        metrics,
        RetentionPolicy(
            site_days=settings.retention_days,
            archive=settings.retention_archive,
            batch_size=settings.retention_batch_size,
        ),
        conversations_service,
        temp_dir=settings.data_dir / "tmp" / "archive",
    )
    register_retention_jobs(
        jobs, scheduler, retention, every_seconds=settings.retention_sweep_interval_seconds
    )
    exports = Exports(
        db,
        blobs,
        events,
        jobs,
        metrics,
        secret=settings.signing_secret(),
        ttl=timedelta(days=settings.export_ttl_days),
        per_day=settings.exports_per_day,
        temp_dir=settings.data_dir / "tmp" / "exports",
        public_url=settings.public_url,
    )
    register_export_jobs(jobs, scheduler, exports)
    erasure = Erasure(
        db,
        hasher,
        limiter,
        auth,
        conversations_service,
        exports,
        events,
        jobs,
        metrics,
        blobs,
        mode=settings.erasure_mode,
        urls=attachment_urls,
    )
    webhooks = Webhooks(
        db,
        conversations_service,
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
        attachment_urls,
        metrics.webhooks,
    )
    webhooks.on_change.append(outgoing_webhooks.changed)
    events.add_listener(outgoing_webhooks.on_events)  # queued after the commit, as jobs
    outgoing_webhooks.register(jobs)
    register_erasure_jobs(jobs, erasure)
    notifications = build_notifications(
        settings, db, events, jobs, scheduler, metrics, limiter, outbound
    )
    audit = AuditLog(
        db, jobs, scheduler, retention=timedelta(days=settings.audit_retention_days)
    )
    two_factor = TwoFactor(db, hasher, limiter, issuer=settings.totp_issuer)
    administration = Administration(db, auth, conversations_service)
    avatars = Avatars(db, blobs, uploads, accounts, conversations_service)
    return Container(
        settings=settings,
        db=db,
        metrics=metrics,
        limiter=limiter,
        events=events,
        accounts=accounts,
        auth=auth,
        contacts=Contacts(db, events),
        conversations=conversations_service,
        messages=messages,
        reactions=Reactions(db, events, attachment_urls),
        receipts=Receipts(db, events),
        search=Search(db, attachment_urls, search_indexer),
        search_indexer=search_indexer,
        threads=Threads(db, events, attachment_urls),
        pins=Pins(db, events, attachment_urls),
        forwarding=Forwarding(db, messages.enqueue_request),
        directory=Directory(db, conversations_service),
        invites=Invites(db, conversations_service),
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
        retention=retention,
        exports=exports,
        erasure=erasure,
        bots=Bots(db, auth, accounts, avatars, max_per_owner=settings.max_bots_per_user),
        webhooks=webhooks,
        outgoing_webhooks=outgoing_webhooks,
        commands=Commands(
            db,
            accounts,
            conversations_service,
            messages,
            notifications.settings,
            events,
            outbound,
            limiter,
        ),
        notifications=notifications,
        outbound=outbound,
        audit=audit,
        login=LoginFlow(auth, two_factor, audit, notifications.signer),
        credentials=Credentials(
            db,
            hasher,
            auth,
            limiter,
            jobs,
            EmailKit(notifications.mailer, notifications.signer, notifications.links),
            reset_ttl=timedelta(minutes=settings.password_reset_ttl_minutes),
            admin_link_ttl=timedelta(hours=settings.admin_reset_link_ttl_hours),
        ),
        two_factor=two_factor,
        administration=administration,
        registration=Registration(db, accounts, default_mode=settings.registration),
        reports=Reports(db, events, messages, administration),
        e2ee_devices=E2eeDevices(
            db,
            events,
            metrics,
            enabled=settings.e2ee != "off",
            max_one_time_prekeys=settings.e2ee_max_one_time_prekeys,
        ),
        e2ee_inbox=E2eeInbox(
            db,
            events,
            metrics,
            enabled=settings.e2ee != "off",
            inbox_max=settings.e2ee_inbox_max,
            max_ciphertext_chars=settings.e2ee_max_to_device_chars,
        ),
        e2ee_backups=E2eeBackups(
            db, enabled=settings.e2ee != "off", max_chars=settings.e2ee_max_backup_chars
        ),
        avatars=avatars,
        bus=backends.bus,
        presence_store=backends.presence,
        _closers=[blobs.close, image_workers.close, outbound.close],
    )
