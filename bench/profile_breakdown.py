"""Where a message's server CPU goes: the samples of a py-spy profile of the send path (the
collapsed stacks ``gateway_bench.py --profile`` writes) sorted into the steps of a send, each
with its share of the event loop's samples (the busiest thread's) and, given the CPU time
per message, its microseconds.

    python bench/gateway_bench.py --mode short --scenarios fanout --sizes dm --profile dm
    python bench/profile_breakdown.py bench/results/profile-parley-dm.txt --us-per-message 434

A sample goes to the first step (in the order below) with a matching frame on its stack;
the rest is the event loop's own work. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway_profile import busiest, collapsed_stacks

Test = Callable[[Sequence[str]], bool]


def calls(*names: str) -> Test:
    """A stack with a frame of one of these functions (``Class.method`` or ``function``)."""
    return lambda stack: any(frame.startswith(names) for frame in stack)


def in_files(*parts: str) -> Test:
    return lambda stack: any(part in frame for frame in stack for part in parts)


def socket_write(stack: Sequence[str]) -> bool:
    # The transport's write: the kernel's send, loopback delivery included (uvloop keeps
    # the GIL through it, so py-spy samples it on this line).
    return bool(stack) and stack[-1].startswith("write_frames_now") and "transport.write" in _line_of(stack[-1])


def frames_in(stack: Sequence[str]) -> bool:
    return in_files("websockets/", "uvicorn/protocols")(stack) and not in_files("outbox.py")(stack)


SRC = Path(__file__).resolve().parent.parent / "src"  # py-spy names Parley's files from here
_SOURCE: dict[str, list[str]] = {}


def _line_of(frame: str) -> str:
    """The source line a ``function (path:line)`` frame was sampled on ('' when unknown)."""
    try:
        where = frame.rsplit("(", 1)[1].rstrip(")")
        path, number = where.rsplit(":", 1)
        if path not in _SOURCE:
            found = next((p for p in (SRC / path, Path(path)) if p.is_file()), None)
            _SOURCE[path] = found.read_text(encoding="utf-8").splitlines() if found else []
        lines = _SOURCE[path]
        return lines[int(number) - 1] if 0 < int(number) <= len(lines) else ""
    except (IndexError, ValueError):
        return ""


STEPS: list[tuple[str, Test]] = [
    ("kernel: socket writes", socket_write),
    ("metrics (prometheus-client)", in_files("prometheus_client/")),
    ("rate limits", in_files("ratelimit.py")),
    ("reading and validating the call", calls("FrameReader.", "Handlers.read", "Handlers.parse")),
    ("frames in: WebSocket protocol (uvicorn, websockets)", frames_in),
    ("frames out: framing, outboxes", calls("Flusher._flush", "write_frames_now")),
    (
        "event built: wire form, envelope",
        calls("created_event", "batch_events", "envelope_for", "Message.to_public", "Message.public_text"),
    ),
    (
        "event routed: broker, router, hub, outbox queues",
        calls("EventBroker.emit", "EventRouter", "Hub.deliver", "Gateway._deliver", "InProcessBus"),
    ),
    (
        "ack to the sender",
        calls("Connection._on_work_done", "Connection._send_ready_answers", "Connection._answer_now", "ack_frame"),
    ),
    ("commit: the batch's event-loop part", calls("Batcher._write", "MessageSender._write_batch", "Batcher._run")),
    (
        "send checks, request, queueing",
        calls("MessageSender.enqueue", "Handlers.queue", "Batcher.enqueue", "Connection._call"),
    ),
    ("connection: read loop, call order", calls("Connection._read", "Connection._handle", "StarletteSocket.receive")),
]
REST = "event loop, tasks, other"


def breakdown(profile: Path) -> tuple[Counter[str], int, int]:
    """Samples per step of the busiest thread (the event loop), its total, and the other
    threads' samples."""
    per_thread = collapsed_stacks(profile)
    loop = busiest(per_thread)
    steps: Counter[str] = Counter()
    for stack, count in per_thread.get(loop, []):
        steps[next((name for name, test in STEPS if test(stack)), REST)] += count
    main = sum(steps.values())
    other = sum(count for thread, stacks in per_thread.items() if thread != loop for _, count in stacks)
    return steps, main, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--us-per-message", type=float, help="server CPU per message, for µs per step")
    args = parser.parse_args()
    steps, main_samples, other = breakdown(args.profile)
    if not main_samples:
        raise SystemExit(f"{args.profile}: no samples")
    print(f"event loop's thread: {main_samples} samples; other threads (holding the GIL): {other}")
    print("| step | share of the loop's samples |" + (" µs per message |" if args.us_per_message else ""))
    print("|---|---|" + ("---|" if args.us_per_message else ""))
    for name, count in steps.most_common():
        share = count / main_samples
        cost = f" {share * args.us_per_message:.0f} |" if args.us_per_message else ""
        print(f"| {name} | {100 * share:.1f} % |{cost}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
