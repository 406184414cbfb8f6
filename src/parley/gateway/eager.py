"""Running a coroutine at once, in the caller, until it first has to wait.

A socket write usually completes without waiting (the transport takes the bytes and
``send`` returns), so starting a task for each one — a task per delivery, a thousand for
one message to a group of a thousand — pays for scheduling that nothing needs. Python 3.12
has this built in (``asyncio.eager_task_factory``); on 3.11 :func:`start_eagerly` does the
same for one coroutine: it runs the coroutine's first step in the caller, and only a
coroutine that suspends continues in a task, which resumes it where it stopped exactly as
the task running it from the start would have (the future it waits on, a cancellation
thrown in where it waits).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from collections.abc import Coroutine, Generator
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None] | None:
    """Run ``coro`` now until it finishes (None) or first suspends (a task finishing it).
    An exception raised before the first suspension propagates to the caller."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    task = asyncio.get_running_loop().create_task(_finish(coro, waiting_on), name=name)
    task.add_done_callback(functools.partial(_cancel_if_never_resumed, coro))
    return task


def _cancel_if_never_resumed(coro: Coroutine[Any, Any, None], _task: asyncio.Task[None]) -> None:
    """A task cancelled before its first step never ran :func:`_resume`: ``coro`` still
    waits where it suspended. Cancel it there, as a task running it would have."""
    if inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED:  # it finished
        return
    try:
        coro.throw(asyncio.CancelledError())
    except (StopIteration, asyncio.CancelledError):
        return
    coro.close()  # it went on to wait again: nothing will resume it now


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _resume(coro, waiting_on)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Hand what ``coro`` waits on (a future, or None for a bare yield) to the task running
    this, and pass back what the task sends or throws, until ``coro`` returns."""
    while True:
        try:
            sent = yield waiting_on
        except BaseException as exc:  # the task's cancellation, thrown in where coro waits
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(sent)
        except StopIteration:
            return
