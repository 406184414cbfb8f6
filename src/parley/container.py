"""The service container: every long-lived object of one Parley node, built from Settings.

``app`` (HTTP and WebSocket wiring) and ``cli`` (commands) build one of these; nothing else
creates services. Backends are chosen here, once: SQLite or PostgreSQL, memory or Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from parley.config import Settings
from parley.observability.metrics import Metrics
from parley.security.passwords import PasswordHasher
from parley.security.ratelimit import MemoryRateLimiter, Rate, RateLimiter
from parley.security.tokens import TokenSigner
from parley.services.accounts import Accounts
from parley.services.auth import Auth
from parley.services.events import EventBroker
from parley.store.db import Database

ReadinessCheck = Callable[[], Awaitable[object]]


@dataclass
class Container:
    settings: Settings
    db: Database
    metrics: Metrics
    limiter: RateLimiter
    events: EventBroker
    accounts: Accounts
    auth: Auth
    api_rate: Rate
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {"database": self.db.ping}

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer()
        await self.db.dispose()


def build_container(settings: Settings) -> Container:
    db = Database(
        settings.effective_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.database_pool_size,
    )
    metrics = Metrics()
    metrics.watch_pool(db.pool_status)
    limiter: RateLimiter = MemoryRateLimiter()
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    signer = TokenSigner(
        settings.signing_secret(),
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
    )
    events = EventBroker()
    accounts = Accounts(db, hasher)
    auth = Auth(
        db,
        hasher,
        signer,
        limiter,
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
        login_failure_rate=Rate.per_window(
            settings.login_failures_allowed, settings.login_failure_window_seconds
        ),
    )
    return Container(
        settings=settings,
        db=db,
        metrics=metrics,
        limiter=limiter,
        events=events,
        accounts=accounts,
        auth=auth,
        api_rate=Rate(settings.api_rate_per_second, settings.api_burst),
    )
