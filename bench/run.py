"""``make bench`` / ``make bench-full``: every benchmark, one JSON, one Markdown section, plots.

Runs, in one process and one run (so every ratio compares figures taken minutes apart on
the same machine):

1. the gateway benchmarks (``gateway_bench.py``): fan-out against the floor, idle
   connections, the reconnect storm;
2. history paging and ``changes`` against a primary-key lookup (``history_bench.py``);
3. group commit against one transaction per message (``group_commit_bench.py``), on SQLite
   and, when it answers, PostgreSQL;
4. multi-node latency through Redis (part of the gateway benchmarks) — when a Redis bus
   exists in ``src/parley/bus/`` and Redis and PostgreSQL answer; skipped with a note
   otherwise;
5. a second, independent closed-loop measurement of Parley (``closed_loop.py``: the
   ``websockets`` client, N senders with k in flight, accepted messages counted from the
   acks and from the database) into a group of 100 and direct messages, reported beside
   the fan-out probe;
6. (``full`` only) two worker processes against one on the same machine, PostgreSQL +
   Redis (``workers_bench.py``): ratio two / one of deliveries/s for direct messages,
   groups of 10 and a group of 100 — when PostgreSQL and Redis answer.

Writes ``bench/results/<time>-<mode>.json``, prints the ratio table, appends a section to
``docs/benchmarks.md`` (command, commit, machine, tables) and redraws the plots in
``docs/benchmarks/``.

    python bench/run.py [--mode short|full] [--no-doc]
                        [--skip gateway,history,group_commit,closed_loop,workers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import closed_loop  # noqa: E402
import gateway_bench  # noqa: E402
import history_bench  # noqa: E402
import report  # noqa: E402
import workers_bench  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
PLOTS = ROOT / "docs" / "benchmarks"
PG_ADMIN = os.environ.get("PARLEY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

HISTORY = {
    "short": {"databases": ["sqlite"], "sizes": [10_000, 100_000], "repeat": 10},
    "full": {"databases": ["sqlite", "postgres"], "sizes": [10_000, 100_000, 1_000_000], "repeat": 20},
}
# The independent closed loop: senders, in flight each, warm-up and window (seconds).
CLOSED_LOOP = {"short": (100, 2, 1.5, 3.0), "full": (100, 2, 3.0, 10.0)}
GROUP_COMMIT = {"short": ["--senders", "32", "--messages", "10"], "full": ["--senders", "64", "--messages", "20"]}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ""
    try:
        load = f", load average {Path('/proc/loadavg').read_text().split()[0]} at the start"
    except OSError:
        pass
    return (
        f"nproc {os.cpu_count()}, {model}{memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}{load}"
    )


def commit() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty=+uncommitted changes"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        return described or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def postgres_answers() -> bool:
    async def probe() -> bool:
        import asyncpg

        try:
            connection = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
        except Exception:
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


def group_commit(mode: str, databases: list[str]) -> list[dict[str, Any]]:
    runs = []
    for database in databases:
        with tempfile.NamedTemporaryFile(suffix=".json") as output:
            command = [sys.executable, str(BENCH / "group_commit_bench.py"), "--database", database,
                       *GROUP_COMMIT[mode], "--json", output.name]
            log(f"group commit on {database}")
            subprocess.run(command, check=True, timeout=600, stdout=subprocess.DEVNULL)
            runs.append(json.loads(Path(output.name).read_text()))
    return runs


def multi_node_note(gateway: dict[str, Any] | None) -> str | None:
    multinode = (gateway or {}).get("multinode")
    if multinode is None:
        return "Multi-node latency through Redis: not run (gateway benchmarks skipped)."
    if "skipped" in multinode:
        return f"Multi-node latency through Redis: skipped — {multinode['skipped']}."
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["short", "full"], default="short")
    parser.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    parser.add_argument("--skip", default="", help="comma-separated: gateway,history,group_commit,closed_loop,workers")
    parser.add_argument("--processes", type=int, default=0)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.monotonic()
    stamp = datetime.now(UTC)
    command = os.environ.get("BENCH_COMMAND") or "python bench/run.py " + " ".join(sys.argv[1:])
    notes: list[str] = []
    result: dict[str, Any] = {
        "meta": {
            "started": stamp.strftime("%Y-%m-%d %H:%M UTC"),
            "mode": args.mode,
            "command": command.strip(),
            "argv": " ".join([Path(sys.executable).name, *sys.argv]),
            "commit": commit(),
            "machine": machine(),
            "compression": os.environ.get("PARLEY_GATEWAY_COMPRESSION", "").lower() in ("1", "true"),
            "notes": notes,
        }
    }
    log(f"{args.mode} run on {result['meta']['machine']}")
    pg = postgres_answers()
    if not pg:
        notes.append(f"PostgreSQL did not answer at {PG_ADMIN}: its rows are missing from this run.")
    results_dir = BENCH / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{args.mode}.json"
    try:
        if "gateway" not in skip:
            gateway_args = gateway_bench.parse_args(["--mode", args.mode, "--processes", str(args.processes)])
            result["gateway"] = asyncio.run(gateway_bench.run(gateway_args))
        if "closed_loop" not in skip:
            senders, inflight, warmup, seconds = CLOSED_LOOP[args.mode]
            log(f"independent closed loop: {senders} senders × {inflight} in flight, group of 100 and direct messages")
            result["closed_loop"] = asyncio.run(closed_loop.run(["group100", "dm"], senders, inflight, warmup, seconds))
        if "workers" not in skip and args.mode == "full":
            if pg and workers_bench.redis_answers():
                log("two workers against one: PostgreSQL + Redis, direct messages, groups of 10, a group of 100")
                result["workers"] = asyncio.run(workers_bench.run("full", 2, ["dm", "10", "100"], 2, None))
            else:
                notes.append("Two workers against one: skipped — PostgreSQL or Redis does not answer.")
        if "history" not in skip:
            plan = HISTORY[args.mode]
            databases = [d for d in plan["databases"] if d == "sqlite" or pg]
            log(f"history and changes: {', '.join(databases)} at {plan['sizes']}")
            result["history"] = asyncio.run(history_bench.run(databases, plan["sizes"], plan["repeat"]))
        if "group_commit" not in skip:
            result["group_commit"] = group_commit(args.mode, ["sqlite", "postgres"] if pg else ["sqlite"])
    except BaseException as exc:
        # The run stops (a step that measured nothing must not print a ratio), but what it
        # measured before is kept for the post-mortem.
        result["meta"]["failed"] = f"{type(exc).__name__}: {exc}"
        result["meta"]["seconds"] = time.monotonic() - started
        path.write_text(json.dumps(result, indent=2, default=str))
        log(f"run failed; what was measured is in {path.relative_to(ROOT)}")
        raise
    note = multi_node_note(result.get("gateway"))
    if note:
        notes.append(note)
    result["meta"]["seconds"] = time.monotonic() - started
    path.write_text(json.dumps(result, indent=2, default=str))
    plots = [] if args.no_doc else report.plot(result, PLOTS, "" if args.mode == "full" else "-short")
    section = report.markdown(result, plots)
    if not args.no_doc:
        if not DOC.exists():
            DOC.parent.mkdir(parents=True, exist_ok=True)
            DOC.write_text("# Benchmarks\n\nMethod: see bench/run.py. Runs, newest last:\n\n")
        with DOC.open("a") as handle:
            handle.write("\n" + section)
    print("\n".join(["", f"# Parley benchmarks ({args.mode}), {result['meta']['seconds']:.0f} s", "",
                     *report.headline(result), "", "Targets:", ""]
                    + [f"- {t}: {m} — {v}" for t, m, v in report.targets(result)]
                    + ["", f"Results: {path.relative_to(ROOT)}"
                       + ("" if args.no_doc else f"; section appended to {DOC.relative_to(ROOT)}")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
