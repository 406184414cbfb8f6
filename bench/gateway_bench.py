"""Gateway benchmarks — fan-out, connections, reconnect storm — Parley against the floor.

Every figure comes from one run on one machine: Parley (``python -m parley serve``) and the
floor (``bench/floor_server.py``, a bare broadcast server on the same stack) are driven by
the same load generator (``bench/loadgen.py``) in the same run, the server pinned to one
core and the load to the others, over loopback only.

- **fan-out**, per group size (direct messages, then groups of 10 / 100 / 300 / 1,000):
  a closed-loop probe finds saturation (each sender keeps a few messages in flight and
  sends the next as soon as one is acknowledged); then open-loop steps at fixed fractions
  of that rate give latency against rate. The floor runs the same absolute rates (latency
  at equal load) and its own probe (its saturation).
- **connections**: as many idle connections as the mode allows (10,000 in ``full``),
  opened in four chunks: RSS against connections, connect rate, idle CPU (heartbeats).
- **reconnect storm**: the server restarts (SIGTERM: every session gets 1001) and N clients
  reconnect at once: the time until every one has identified and received ``ready``.

    python bench/gateway_bench.py [--mode short|full] [--scenarios fanout,connections,storm]
                                  [--processes N] [--no-deflate] [--json PATH]
                                  [--profile SIZE] [--profile-seconds 15]

Not a test: nothing here asserts a time. Every run is bounded and stops its servers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The scenarios live in their own modules (gateway_fanout, gateway_connections,
# gateway_multinode) on shared parts (gateway_modes, gateway_targets, gateway_stand,
# gateway_step, gateway_profile, gateway_output); this script runs the ones asked for.
from gateway_connections import connections_and_storm  # noqa: E402
from gateway_fanout import fanout  # noqa: E402
from gateway_modes import MODES  # noqa: E402
from gateway_multinode import multinode  # noqa: E402
from gateway_output import RESULTS_DIR, log  # noqa: E402
from procs import pin_self, plan_pinning, raise_open_files_limit  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, Any]:
    mode = MODES[args.mode]
    if args.sizes:
        mode = dataclasses.replace(mode, sizes=tuple(x if x == "dm" else int(x) for x in args.sizes.split(",")))
    pinning = plan_pinning()
    pin_self(pinning.load)
    files = raise_open_files_limit()
    scenarios = set(args.scenarios.split(","))
    processes = args.processes or max(2, len(pinning.load or []))
    log(f"pinning: {pinning.note}; open files limit {files}; {processes} load processes; "
        f"permessage-deflate {'on' if args.deflate else 'off'}")
    result: dict[str, Any] = {
        "benchmark": "gateway",
        "mode": args.mode,
        "pinning": pinning.note,
        "load_processes": processes,
        "deflate": args.deflate,
        "open_files_limit": files,
    }
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if "fanout" in scenarios:
                result["fanout"] = await fanout(mode, workdir, pinning, processes, args.deflate,
                                                args.profile, args.profile_seconds, args.profile_rate)
            if "multinode" in scenarios:
                result["multinode"] = await multinode(mode, workdir, pinning, args.deflate)
            if scenarios & {"connections", "storm"}:
                for kind in ("parley", "floor"):
                    result[f"connections_{kind}"] = await connections_and_storm(
                        kind, mode, workdir, pinning, processes, args.deflate, scenarios
                    )
        finally:
            if args.keep_logs:
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                for log_file in workdir.rglob("*.log"):
                    shutil.copy(log_file, RESULTS_DIR / log_file.name)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(MODES), default="short")
    parser.add_argument("--scenarios", default="fanout,multinode,connections,storm")
    parser.add_argument("--sizes", help="fan-out sizes instead of the mode's (e.g. dm,10,1000)")
    parser.add_argument("--processes", type=int, default=0, help="load processes (default: max(2, load cores))")
    parser.add_argument("--no-deflate", dest="deflate", action="store_false",
                        help="do not offer permessage-deflate (browsers and the SDK do)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--profile", help="group size to profile with py-spy (e.g. 100)")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--profile-rate", type=float, default=math.inf,
                        help="profile at this many messages/s instead of a closed-loop probe")
    parser.add_argument("--keep-logs", action="store_true", help="copy server logs to bench/results/")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
