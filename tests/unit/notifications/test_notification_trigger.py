"""The notification trigger gathers the messages emitted within its window into one plan
job (on the real in-process job queue): a job per group-commit batch cost a plan read per
batch. A push delay of 0 still queues at once, and closing queues what is gathered."""

from __future__ import annotations

import asyncio
from typing import Any

from parley.jobs.memory import MemoryJobQueue
from parley.notifications.planner import PLAN_JOB, NotificationTrigger
from parley.services.events import Event
from parley.wire.events import EventType

WAIT_SECONDS = 5.0


def created(message_id: str, conversation_id: str) -> Event:
    message = {"id": message_id, "conversation_id": conversation_id, "kind": "text"}
    return Event(EventType.MESSAGE_CREATED, {"message": message}, conversation_id=conversation_id)


class PlanJobs(MemoryJobQueue):
    """The in-process queue, recording each plan job as it is queued (before its delay)."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.payloads: list[dict[str, Any]] = []
        self.delays: list[float] = []
        self._queued = asyncio.Event()

    async def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, delay_seconds: float = 0.0
    ) -> str:
        if kind == PLAN_JOB:
            self.payloads.append(dict(payload or {}))
            self.delays.append(delay_seconds)
            self._queued.set()
        return await super().enqueue(kind, payload, delay_seconds=delay_seconds)

    async def until(self, count: int) -> None:
        async def enough() -> None:
            while len(self.payloads) < count:
                self._queued.clear()
                await self._queued.wait()

        await asyncio.wait_for(enough(), WAIT_SECONDS)


async def test_batches_emitted_within_the_window_make_one_plan_job() -> None:
    jobs = PlanJobs()
    trigger = NotificationTrigger(jobs, delay_seconds=30.0, gather_seconds=0.2)
    try:
        await trigger.on_events([created("m1", "c1"), created("m2", "c2")])
        await asyncio.sleep(0)  # another batch, a loop iteration later
        await trigger.on_events([created("m3", "c1")])
        await trigger.on_events([Event(EventType.MESSAGE_UPDATED, {"message": {}})])  # not notifiable
        await jobs.until(1)
        assert jobs.payloads == [{"message_ids": ["m1", "m2", "m3"], "conversation_ids": ["c1", "c2"]}]
        assert jobs.delays == [30.0]  # the whole push delay, from when the window closed
        # A later batch starts a new window.
        await trigger.on_events([created("m4", "c3")])
        await jobs.until(2)
        assert jobs.payloads[1] == {"message_ids": ["m4"], "conversation_ids": ["c3"]}
    finally:
        await trigger.close()
        await jobs.close()


async def test_no_delay_means_no_gathering() -> None:
    jobs = PlanJobs()
    trigger = NotificationTrigger(jobs, delay_seconds=0.0, gather_seconds=10.0)
    try:
        await trigger.on_events([created("m1", "c1")])
        await trigger.on_events([created("m2", "c1")])
        await jobs.until(2)
        assert [p["message_ids"] for p in jobs.payloads] == [["m1"], ["m2"]]
    finally:
        await trigger.close()
        await jobs.close()


async def test_closing_queues_what_is_gathered() -> None:
    jobs = PlanJobs()
    trigger = NotificationTrigger(jobs, delay_seconds=60.0, gather_seconds=60.0)
    await trigger.on_events([created("m1", "c1")])
    assert jobs.payloads == []  # gathering for a minute
    await asyncio.wait_for(trigger.close(), WAIT_SECONDS)
    assert [p["message_ids"] for p in jobs.payloads] == [["m1"]]
    await jobs.close()


async def test_after_closing_nothing_waits_for_a_timer() -> None:
    jobs = PlanJobs()
    trigger = NotificationTrigger(jobs, delay_seconds=60.0, gather_seconds=60.0)
    await trigger.close()
    await trigger.on_events([created("m1", "c1")])  # a late event (a job still running)
    await jobs.until(1)  # queued at once, not after the minute's window
    assert [p["message_ids"] for p in jobs.payloads] == [["m1"]]
    await trigger.close()
    await jobs.close()
