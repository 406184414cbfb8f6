"""The two-workers scenario (``workers_bench.py``) in the report: its table, its headline
rows and its verdict against issue #23's target (two workers ≥ 1.6× one)."""

from __future__ import annotations

from typing import Any

TARGET_WORKERS_RATIO = 1.6


def _shape(size: str) -> str:
    return "direct messages (100 pairs)" if size == "dm" else (
        "a group of 100" if size == "100" else f"groups of {size} ({100 // int(size)} of them)")


def _spread(figure: dict[str, Any] | None, digits: int = 2) -> str:
    if not figure:
        return "–"
    return f"{figure['min']:.{digits}f} / **{figure['median']:.{digits}f}** / {figure['max']:.{digits}f}"


def workers_tables(workers: dict[str, Any] | None) -> list[str]:
    if not workers:
        return []
    n = workers["workers"]
    spread = "; ".join(
        f"{label}: " + " / ".join(str(count) for pid, count in sorted(per.items()) if count or len(per) == 1)
        for label, per in workers.get("connections_per_worker", {}).items()
    )
    lines = [
        f"#### {n} workers against one on one machine (PostgreSQL + Redis)",
        "",
        f"`parley serve --workers {n}` and `--workers 1`, both on PostgreSQL and Redis, {workers['senders']} "
        f"senders with {workers['inflight']} in flight each (closed-loop probes), {workers['load_processes']} "
        f"load processes; nothing pinned: on {workers['cores']} cores the load generator shares the cores "
        f"with the server, so server and load CPU (in cores) are beside each figure. Connections per "
        f"worker after connecting: {spread or '–'}.",
        "",
        f"| conversations | 1 worker deliveries/s | {n} workers deliveries/s | **{n} / 1** (min / median / max) "
        f"| per server CPU-second | server CPU 1 → {n} | load CPU 1 → {n} | p50 ms 1 → {n} "
        f"| machine busy 1 → {n} (PostgreSQL) | ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in workers["summary"]:
        one, many = row["one"], row["many"]
        lines.append(
            f"| {_shape(row['size'])} | {one['deliveries_per_s']['median']:,.0f} "
            f"| {many['deliveries_per_s']['median']:,.0f} | {_spread(row['ratio'])} "
            f"| {_spread(row['ratio_per_server_cpu'])} "
            f"| {one['server_cpu']['median']:.2f} → {many['server_cpu']['median']:.2f} "
            f"| {one['load_cpu']['median']:.2f} → {many['load_cpu']['median']:.2f} "
            f"| {one['p50_ms']:.0f} → {many['p50_ms']:.0f} "
            f"| {_machine(one, many, workers['cores'])} |"
        )
    lines += [
        "",
        "Machine busy: cores in use on the whole machine during the probes (`/proc/stat`), "
        "PostgreSQL's processes in brackets. Ceiling: the machine's cores over what one worker's "
        "probe kept busy — the most any number of workers could deliver relative to one if "
        "everything (server, PostgreSQL, Redis, load) grew with the deliveries.",
        "",
    ]
    return lines


def _machine(one: dict[str, Any], many: dict[str, Any], cores: int) -> str:
    if "machine_cores" not in one or "machine_cores" not in many:
        return "– | –"  # a result from before the machine was sampled
    first, second = one["machine_cores"], many["machine_cores"]
    ceiling = cores / first["machine"] if first["machine"] > 0 else float("nan")
    return (f"{first['machine']:.2f} ({first['postgres']:.2f}) → {second['machine']:.2f} "
            f"({second['postgres']:.2f}) | {ceiling:.2f}×")


def workers_headline(workers: dict[str, Any] | None) -> list[str]:
    if not workers:
        return []
    n = workers["workers"]
    return [
        f"| deliveries/s, {_shape(row['size'])}: {n} workers vs 1 "
        f"| {row['many']['deliveries_per_s']['median']:,.0f} "
        f"| {row['one']['deliveries_per_s']['median']:,.0f} (1 worker) "
        f"| {_spread(row['ratio'])} |"
        for row in workers["summary"]
    ]


def workers_target(workers: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    if not workers:
        return []
    rows = workers["summary"]
    met = [r for r in rows if r["ratio"]["median"] >= TARGET_WORKERS_RATIO]
    return [(
        f"{workers['workers']} workers ≥ {TARGET_WORKERS_RATIO}× one worker's deliveries/s (one machine)",
        ", ".join(f"{r['size']} {r['ratio']['median']:.2f} (per server CPU "
                  f"{(r['ratio_per_server_cpu'] or {}).get('median', 0):.2f})" for r in rows),
        "met" if len(met) == len(rows) else
        (f"met for {', '.join(r['size'] for r in met)}; not for the others" if met else "not met"),
    )]
