"""Builds the notification parts of one node and holds what the API and the app need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from parley.config import Settings
from parley.jobs.queue import JobQueue
from parley.jobs.scheduler import Scheduler
from parley.notifications.digests import Digests
from parley.notifications.email_addresses import EmailAddresses
from parley.notifications.email_kit import EmailKit
from parley.notifications.links import PublicLinks
from parley.notifications.mailer import DisabledMailer, Mailer, SmtpMailer
from parley.notifications.planner import NotificationTrigger, Planner
from parley.notifications.push_delivery import PushDelivery
from parley.notifications.subscriptions import PushSubscriptions
from parley.notifications.vapid import VapidKeys
from parley.notifications.webpush import WebPushSender
from parley.observability.metrics import Metrics
from parley.outbound import OutboundClient
from parley.security.link_tokens import LinkSigner
from parley.security.ratelimit import RateLimiter
from parley.services.events import EventBroker
from parley.services.notification_settings import NotificationSettings
from parley.store.db import Database


@dataclass
class Notifications:
    settings: NotificationSettings
    email_addresses: EmailAddresses
    subscriptions: PushSubscriptions
    vapid: VapidKeys
    links: PublicLinks
    signer: LinkSigner
    mailer: Mailer
    trigger: NotificationTrigger

    async def close(self) -> None:
        await self.trigger.close()


def build_mailer(settings: Settings) -> Mailer:
    if not settings.smtp_url:
        return DisabledMailer()
    return SmtpMailer(
        settings.smtp_url,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )


def build_notifications(
    settings: Settings,
    db: Database,
    events: EventBroker,
    jobs: JobQueue,
    scheduler: Scheduler,
    metrics: Metrics,
    limiter: RateLimiter,
    outbound: OutboundClient,
) -> Notifications:
    links = PublicLinks.from_settings(settings)
    signer = LinkSigner(settings.signing_secret())
    mailer = build_mailer(settings)
    vapid = VapidKeys.from_settings(settings)
    sender = WebPushSender(vapid, outbound, ttl_seconds=settings.push_ttl_seconds)
    trigger = NotificationTrigger(jobs, delay_seconds=settings.push_delay_seconds)
    events.add_listener(trigger.on_events)
    Planner(db, jobs, metrics.notifications, email_delay_seconds=settings.email_notify_delay_seconds)
    PushDelivery(
        db, jobs, sender, metrics.notifications, coalesce_seconds=settings.push_coalesce_seconds
    )
    email = EmailKit(mailer, signer, links)
    Digests(
        db,
        jobs,
        scheduler,
        email,
        metrics.notifications,
        delay_seconds=settings.email_notify_delay_seconds,
        sweep_seconds=settings.email_digest_sweep_seconds,
    )
    return Notifications(
        settings=NotificationSettings(db, events),
        email_addresses=EmailAddresses(
            db,
            jobs,
            email,
            limiter,
            verification_ttl=timedelta(hours=settings.email_verification_ttl_hours),
        ),
        subscriptions=PushSubscriptions(db, outbound.policy),
        vapid=vapid,
        links=links,
        signer=signer,
        mailer=mailer,
        trigger=trigger,
    )
