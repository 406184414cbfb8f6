"""``start_eagerly``: a coroutine runs in the caller until it first waits, then in a task
that resumes it where it stopped — with its waits, its exceptions and its cancellation
(before or after the task's first step) as a task running it from the start would have."""

from __future__ import annotations

import asyncio

import pytest

from parley.gateway.eager import start_eagerly

WAIT_SECONDS = 5.0


async def test_a_coroutine_that_never_waits_runs_in_the_caller() -> None:
    done: list[str] = []

    async def work() -> None:
        done.append("ran")

    assert start_eagerly(work(), name="t") is None
    assert done == ["ran"]


async def test_an_error_before_the_first_wait_reaches_the_caller() -> None:
    async def work() -> None:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        start_eagerly(work(), name="t")


async def test_a_coroutine_that_waits_is_finished_by_a_task() -> None:
    gate = asyncio.Event()
    steps: list[str] = []

    async def work() -> None:
        steps.append("before")
        await gate.wait()
        await asyncio.sleep(0)  # a bare yield too
        steps.append("after")

    task = start_eagerly(work(), name="eager-test")
    assert task is not None and task.get_name() == "eager-test"
    assert steps == ["before"]
    gate.set()
    await asyncio.wait_for(task, WAIT_SECONDS)
    assert steps == ["before", "after"]


async def test_an_error_after_the_first_wait_fails_the_task() -> None:
    gate = asyncio.Event()

    async def work() -> None:
        await gate.wait()
        raise ValueError("later")

    task = start_eagerly(work(), name="t")
    assert task is not None
    gate.set()
    with pytest.raises(ValueError, match="later"):
        await asyncio.wait_for(task, WAIT_SECONDS)


@pytest.mark.parametrize("stepped", [False, True], ids=["before-its-first-step", "while-waiting"])
async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits(stepped: bool) -> None:
    gate = asyncio.Event()
    seen: list[str] = []

    async def work() -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    task = start_eagerly(work(), name="t")
    assert task is not None
    if stepped:
        await asyncio.sleep(0)  # the task's first step: now it waits on the gate itself
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_SECONDS)
    assert seen == ["cancelled", "cleaned up"]
    gate.set()  # nothing waits on it any more
    assert not gate._waiters  # type: ignore[attr-defined]
