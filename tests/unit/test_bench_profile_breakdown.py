"""``bench/profile_breakdown.py`` sorts a profile's samples into the steps of a send: each
sample to the first step with a frame on its stack, the socket write by the line it was
sampled on, other threads apart. Made-up stacks: no profiler, no timing asserted."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

from profile_breakdown import REST, breakdown  # noqa: E402

FRAMES = REPO / "src" / "parley" / "gateway" / "uvicorn_frames.py"
WRITE_LINE = next(
    number
    for number, line in enumerate(FRAMES.read_text(encoding="utf-8").splitlines(), start=1)
    if "transport.write(" in line
)
LOOP = "thread (1): MainThread;Runner.run (asyncio/runners.py:118)"


def test_samples_go_to_the_first_matching_step(tmp_path: Path) -> None:
    profile = tmp_path / "profile.txt"
    profile.write_text(
        "\n".join(
            [
                f"{LOOP};Flusher._flush (parley/gateway/outbox.py:74);"
                f"write_frames_now (parley/gateway/uvicorn_frames.py:{WRITE_LINE}) 7",
                # The same function on another line is framing, not the kernel's write.
                f"{LOOP};Flusher._flush (parley/gateway/outbox.py:74);"
                f"write_frames_now (parley/gateway/uvicorn_frames.py:{WRITE_LINE - 1}) 2",
                # Rate limits come before the send checks that call them.
                f"{LOOP};MessageSender.enqueue (parley/services/message_sending.py:177);"
                "MemoryRateLimiter._take (parley/security/ratelimit.py:90) 3",
                f"{LOOP};MessageSender.enqueue (parley/services/message_sending.py:177) 4",
                f"{LOOP};Handlers.read (parley/gateway/handlers.py:100);"
                "TypeAdapter.validate_json (pydantic/type_adapter.py:466) 5",
                f"{LOOP} 1",
                "thread (2): parley-sqlite-writer_0;_worker (concurrent/futures/thread.py:83) 6",
                "",
            ]
        ),
        encoding="utf-8",
    )
    steps, main, other = breakdown(profile)
    assert (main, other) == (22, 6)
    assert steps == {
        "kernel: socket writes": 7,
        "frames out: framing, outboxes": 2,
        "rate limits": 3,
        "send checks, request, queueing": 4,
        "reading and validating the call": 5,
        REST: 1,
    }
