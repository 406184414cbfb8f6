"""cancel_and_wait: a task that swallows a cancellation is still stopped."""

from __future__ import annotations

import asyncio

from parley.background import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        # What a retry loop does when a library turns the cancellation into an error.
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task]), 5)
    assert swallowed.is_set() and task.cancelled()


async def test_a_task_that_never_stops_is_given_up_on_within_the_bound() -> None:
    deaf_until_told = True

    async def deaf() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not deaf_until_told:
                    raise

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], timeout=0.5), 5)
    assert not task.done()
    deaf_until_told = False
    await cancel_and_wait([task])
    assert task.cancelled()


async def test_failed_and_finished_tasks_are_fine() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(fail())
    finished = asyncio.create_task(asyncio.sleep(0))
    await asyncio.wait({failed, finished})
    await cancel_and_wait([failed, finished])
    assert failed.done() and finished.done()
