"""Background work (DESIGN §2 "jobs/"): a ``JobQueue`` with at-least-once delivery, retries
with backoff and a dead-letter list, plus a ``Scheduler`` for periodic jobs.

In-process by default (``memory``); Redis Streams with a consumer group when
``PARLEY_REDIS_URL`` is set (``redis_streams``). Handlers must be idempotent: a job can run
more than once (a node may die after the work and before the acknowledgement).
"""
