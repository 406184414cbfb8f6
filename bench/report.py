"""Turn one run's results into Markdown tables, target verdicts and plots.

Everything here reads the JSON that ``bench/run.py`` writes, so a report can be redrawn
from ``bench/results/*.json`` without running anything again:

    python bench/report.py bench/results/<run>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from workers_report import workers_headline, workers_tables, workers_target

# DESIGN §4 and issue #9.
TARGET_RATIO = 0.60
TARGET_P99_MS = 50.0
TARGET_CONNECTIONS = 10_000
TARGET_STORM_CLIENTS = 5_000
TARGET_STORM_SECONDS = 30.0
TARGET_MULTINODE_P95_MS = 100.0


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def _n(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _size(size: str) -> str:
    return "direct messages" if size == "dm" else f"group of {int(size):,}"


def _ratio_spread(row: dict[str, Any]) -> str:
    """min / **median** / max of Parley / floor; a run from before the repeats has one ratio."""
    if row.get("ratio_min") is None:
        return f"**{row['ratio']:.2f}** (one run)"
    return f"{row['ratio_min']:.2f} / **{row['ratio']:.2f}** / {row['ratio_max']:.2f}"


def _per_cpu(row: dict[str, Any]) -> str:
    """Parley / floor in deliveries per second of server CPU, min / median / max."""
    per_cpu = row.get("ratio_per_cpu")
    return "–" if not per_cpu else f"{per_cpu['min']:.2f} / {per_cpu['median']:.2f} / {per_cpu['max']:.2f}"


def fanout_tables(fanout: dict[str, Any]) -> list[str]:
    lines = [
        "#### Fan-out at saturation (closed-loop probes, each Parley probe against the floor's of "
        "the same repetition; medians, ratio as min / median / max)",
        "",
        "| conversation | deliveries / msg | runs | Parley msgs/s | Parley deliveries/s | floor deliveries/s "
        "| **Parley / floor** | per server CPU-second | server CPU Parley / floor | load CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in fanout["summary"]:
        lines.append(
            f"| {_size(row['size'])} | {row['fanout']:,} | {row.get('runs', 1)} | {_n(row['parley_msgs_per_s'])} "
            f"| {_n(row['parley_deliveries_per_s'])} | {_n(row['floor_deliveries_per_s'])} "
            f"| {_ratio_spread(row)} | {_per_cpu(row)} | {row['parley_server_cpu_at_saturation']:.2f} / "
            f"{row['floor_server_cpu_at_saturation']:.2f} "
            f"| {row['load_cpu_at_parley_saturation']:.2f} / {row['load_cpu_at_floor_saturation']:.2f} |"
        )
    lines += [
        "",
        "#### Latency at half of Parley's saturation, both servers at the same rate",
        "",
        "| conversation | rate (msgs/s) | Parley p50 / p95 / p99 ms | floor p50 / p95 / p99 ms | p99 Parley / floor |",
        "|---|---|---|---|---|",
    ]
    for row in fanout["summary"]:
        parley, floor = row["parley_half"] or {}, row["floor_half"] or {}
        ratio = (
            f"{parley['p99_ms'] / floor['p99_ms']:.1f}×"
            if parley.get("p99_ms") and floor.get("p99_ms") else "–"
        )
        lines.append(
            f"| {_size(row['size'])} | {_n(row['half_rate'])} "
            f"| {_ms(parley.get('p50_ms'))} / {_ms(parley.get('p95_ms'))} / {_ms(parley.get('p99_ms'))} "
            f"| {_ms(floor.get('p50_ms'))} / {_ms(floor.get('p95_ms'))} / {_ms(floor.get('p99_ms'))} | {ratio} |"
        )
    lines += [
        "",
        "#### Every step",
        "",
        "| conversation | server | step | window s | offered msgs/s | accepted msgs/s | deliveries/s "
        "| p50 / p95 / p99 ms | server CPU | server RSS MB | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in fanout["steps"]:
        latency = step["latency"]
        kind = step["kind"] + (f" #{step['run']}" if step["kind"] == "probe" and "run" in step else "")
        lines.append(
            f"| {_size(step['size'])} | {step['target']} | {kind} | {step['duration']:.1f} "
            f"| {_n(step['offered_rate'])} "
            f"| {_n(step['accepted_per_s'])} | {_n(step['deliveries_per_s'])} "
            f"| {_ms(latency['p50_ms'])} / {_ms(latency['p95_ms'])} / {_ms(latency['p99_ms'])} "
            f"| {step['server_cpu']:.2f} | {step['server_rss_mb']:.0f} | {step['errors'] + step['disconnects']} |"
        )
    return lines


def connection_tables(result: dict[str, Any]) -> list[str]:
    rows = [(kind, result.get(f"connections_{kind}", {})) for kind in ("parley", "floor")]
    lines: list[str] = []
    if any("connections" in r for _, r in rows):
        lines += [
            "#### Idle connections on one server process",
            "",
            "| server | connections | RSS per connection | connect rate | server CPU per connect "
            "| idle CPU (heartbeats) | RSS at the end |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, r in rows:
            c = r.get("connections")
            if c:
                cpu = c.get("connect_cpu_ms")
                lines.append(
                    f"| {kind} | {c['connections']:,} | {c['rss_per_connection_kb']:.1f} KB "
                    f"| {_n(c['connect_per_s'])}/s | {'' if cpu is None else f'{cpu:.2f} ms'} "
                    f"| {100 * c['idle_cpu']:.1f} % of a core "
                    f"| {c['rss_points_mb'][-1][1]:.0f} MB |"
                )
        lines.append("")
    if any("storm" in r for _, r in rows):
        lines += [
            "#### Reconnect storm: the server restarts (SIGTERM, 1001), every client reconnects at once",
            "",
            "| server | clients | all resumed (ready) after | p50 / p95 / p99 | failed | server CPU | restart took |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, r in rows:
            s = r.get("storm")
            if s:
                lines.append(
                    f"| {kind} | {s['clients']:,} | **{_ms(s['all_resumed_s'])} s** "
                    f"| {_ms(s['p50_s'])} / {_ms(s['p95_s'])} / {_ms(s['p99_s'])} s | {s['failed']} "
                    f"| {s['server_cpu']:.2f} | {s['restart_s']:.1f} s |"
                )
        lines.append("")
    return lines


def multinode_tables(multinode: dict[str, Any] | None) -> list[str]:
    if not multinode:
        return []
    if "skipped" in multinode:
        return [f"Multi-node: skipped — {multinode['skipped']}.", ""]
    lines = [
        f"#### Multi-node: two nodes, one PostgreSQL, one Redis; a group of {multinode['group_size']} "
        f"split across the nodes, {multinode['senders']} senders on node A",
        "",
        "| rate msgs/s | deliveries/s | same node p50 / p95 / p99 ms | across Redis p50 / p95 / p99 ms "
        "| Redis adds (p50 / p99) |",
        "|---|---|---|---|---|",
    ]
    for step in multinode["steps"]:
        a, b = step["same_node"], step["across_nodes"]
        added = (
            f"{b['p50_ms'] - a['p50_ms']:+.1f} / {b['p99_ms'] - a['p99_ms']:+.1f} ms"
            if a.get("p50_ms") and b.get("p50_ms") else "–"
        )
        lines.append(
            f"| {step['rate']:g} | {_n(step['deliveries_per_s'])} "
            f"| {_ms(a['p50_ms'])} / {_ms(a['p95_ms'])} / {_ms(a['p99_ms'])} "
            f"| {_ms(b['p50_ms'])} / {_ms(b['p95_ms'])} / {_ms(b['p99_ms'])} | {added} |"
        )
    lines.append("")
    return lines


def _per_cpu_versus(outcome: dict[str, Any], probe: dict[str, Any] | None) -> str:
    """Closed loop / probe in deliveries per second of the server's CPU."""
    probe_rate = (probe or {}).get("parley_deliveries_per_cpu_second")
    if not probe_rate or not outcome["server_cpu"]:
        return "–"
    return f"{outcome['deliveries_per_s'] / outcome['server_cpu'] / probe_rate:.2f}"


def closed_loop_tables(result: dict[str, Any]) -> list[str]:
    """The independent closed loop beside the fan-out probe, Parley only, same run."""
    loop = result.get("closed_loop")
    if not loop:
        return []
    probes = {row["size"]: row for row in result.get("gateway", {}).get("fanout", {}).get("summary", [])}
    lines = [
        "#### Parley at saturation, measured twice: the fan-out probe and the independent closed loop",
        "",
        f"The closed loop (`bench/closed_loop.py`): the `websockets` asyncio client, a fresh server, "
        f"{loop['outcomes'][0]['inflight'] if loop['outcomes'] else '–'} in flight per sender, "
        f"{loop.get('warmup_s', 0):g} s of warm-up then a fixed window; accepted messages counted from "
        "the acks and from the rows the server committed. The probe: median of its runs.",
        "",
        "| conversation | closed loop: senders | acked msgs/s | committed msgs/s | deliveries/s "
        "| server / load CPU | probe: senders | msgs/s | deliveries/s | **closed loop / probe** (deliveries) "
        "| per server CPU-second |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for outcome in loop["outcomes"]:
        size = "dm" if outcome["workload"] == "dm" else "100"
        probe = probes.get(size)
        versus = (f"**{outcome['deliveries_per_s'] / probe['parley_deliveries_per_s']:.2f}**"
                  if probe and probe["parley_deliveries_per_s"] else "–")
        lines.append(
            f"| {_size(size)} | {outcome['senders']} | {_n(outcome['acked_per_s'])} "
            f"| {_n(outcome['committed_per_s'])} | {_n(outcome['deliveries_per_s'])} "
            f"| {outcome['server_cpu']:.2f} / {outcome['load_cpu']:.2f} "
            f"| {probe.get('probe_senders', '–') if probe else '–'} "
            f"| {_n(probe['parley_msgs_per_s']) if probe else '–'} "
            f"| {_n(probe['parley_deliveries_per_s']) if probe else '–'} | {versus} | {_per_cpu_versus(outcome, probe)} |"
        )
    lines.append("")
    return lines


def history_tables(history: list[dict[str, Any]]) -> list[str]:
    if not history:
        return []
    sizes = sorted({r["messages"] for r in history})
    databases = list(dict.fromkeys(r["database"] for r in history))
    columns = [(db, size) for db in databases for size in sizes if any(
        r["database"] == db and r["messages"] == size for r in history)]
    by = {(r["database"], r["messages"]): r for r in history}
    header = " | ".join(f"{db} {size:,}" for db, size in columns)
    lines = [
        "#### History paging and `changes`, × a primary-key lookup (median)",
        "",
        f"| query | {header} |",
        "|---|" + "---|" * len(columns),
        "| primary-key lookup (ms) | " + " | ".join(f"{by[c]['baseline_ms']:.2f} ms" for c in columns) + " |",
    ]
    for index, row in enumerate(by[columns[0]]["queries"]):
        cells = []
        for c in columns:
            q = by[c]["queries"][index]
            cells.append(f"{q['ratio']:g}× ({q['median_ms']:.1f} ms)")
        lines.append(f"| {row['query']} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def group_commit_tables(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    lines = [
        "#### Group commit: acknowledged durable sends/s, batched vs one transaction per message",
        "",
        "| database | senders × messages | one per transaction msgs/s | group commit msgs/s "
        "| mean batch | p50 / p99 ms | **ratio** |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        b, p = r["baseline"], r["parley"]
        lines.append(
            f"| {r['database']} | {r['senders']} × {b['messages'] // max(r['senders'], 1)} "
            f"| {_n(b['messages_per_second'])} | {_n(p['messages_per_second'])} | {p['mean_batch']} "
            f"| {p['p50_ms']} / {p['p99_ms']} | **{r['ratio']:.2f}×** |"
        )
    lines.append("")
    return lines


def targets(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for DESIGN §4's single-node targets."""
    verdicts: list[tuple[str, str, str]] = []
    fanout = result.get("gateway", {}).get("fanout")
    if fanout:
        rows = fanout["summary"]
        met = [r for r in rows if r["ratio"] is not None and r["ratio"] >= TARGET_RATIO]
        measured = ", ".join(
            f"{_size(r['size'])} {r['ratio']:.2f}"
            + (f" ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})" if r.get("ratio_min") is not None else "")
            for r in rows
        )
        verdicts.append((
            f"Parley ≥ {TARGET_RATIO:.0%} of the floor's deliveries/s",
            measured,
            "met" if len(met) == len(rows) else
            (f"met for {', '.join(_size(r['size']) for r in met)}; not for the others" if met else "not met"),
        ))
        p99s = [(r, (r["parley_half"] or {}).get("p99_ms")) for r in rows]
        ok = [r for r, p in p99s if p is not None and p < TARGET_P99_MS]
        verdicts.append((
            f"p99 < {TARGET_P99_MS:.0f} ms at half saturation (one node)",
            ", ".join(f"{_size(r['size'])} {_ms(p)} ms" for r, p in p99s),
            "met" if len(ok) == len(rows) else
            (f"met for {', '.join(_size(r['size']) for r in ok)}; not for the others" if ok else "not met"),
        ))
    multinode = result.get("gateway", {}).get("multinode") or {}
    if multinode.get("steps"):
        worst = max((s["across_nodes"].get("p95_ms") or 0.0) for s in multinode["steps"])
        verdicts.append((
            f"p95 < {TARGET_MULTINODE_P95_MS:.0f} ms across nodes through Redis",
            f"worst p95 {_ms(worst)} ms across {len(multinode['steps'])} rate(s)",
            "met" if worst < TARGET_MULTINODE_P95_MS else "not met",
        ))
    parley = result.get("gateway", {}).get("connections_parley", {})
    conn = parley.get("connections")
    if conn:
        count = conn["connections"]
        verdicts.append((
            f"{TARGET_CONNECTIONS:,} connections on one process, memory per connection reported",
            f"{count:,} connections, {conn['rss_per_connection_kb']:.1f} KB each, "
            f"idle CPU {100 * conn['idle_cpu']:.1f} %",
            "met" if count >= TARGET_CONNECTIONS else f"not measured at {TARGET_CONNECTIONS:,} in this mode",
        ))
    verdicts += workers_target(result.get("workers"))
    storm = parley.get("storm")
    if storm:
        seconds = storm["all_resumed_s"]
        verdicts.append((
            f"reconnect storm of {TARGET_STORM_CLIENTS:,} resumed in < {TARGET_STORM_SECONDS:.0f} s",
            f"{storm['clients']:,} clients in {_ms(seconds)} s",
            ("met" if seconds is not None and seconds < TARGET_STORM_SECONDS else "not met")
            if storm["clients"] >= TARGET_STORM_CLIENTS
            else f"not measured at {TARGET_STORM_CLIENTS:,} in this mode",
        ))
    return verdicts


def headline(result: dict[str, Any]) -> list[str]:
    """The ratio table ``make bench`` prints."""
    lines = ["| figure | Parley | floor | Parley / floor (min / **median** / max) |", "|---|---|---|---|"]
    gateway = result.get("gateway", {})
    for row in gateway.get("fanout", {}).get("summary", []):
        lines.append(
            f"| deliveries/s at saturation, {_size(row['size'])} | {_n(row['parley_deliveries_per_s'])} "
            f"| {_n(row['floor_deliveries_per_s'])} | {_ratio_spread(row)} |"
        )
    for row in gateway.get("fanout", {}).get("summary", []):
        parley, floor = row["parley_half"] or {}, row["floor_half"] or {}
        if parley.get("p99_ms") and floor.get("p99_ms"):
            lines.append(
                f"| p99 ms at {_n(row['half_rate'])} msgs/s, {_size(row['size'])} | {_ms(parley['p99_ms'])} "
                f"| {_ms(floor['p99_ms'])} | {parley['p99_ms'] / floor['p99_ms']:.1f} |"
            )
    probes = {row["size"]: row for row in gateway.get("fanout", {}).get("summary", [])}
    for outcome in (result.get("closed_loop") or {}).get("outcomes", []):
        size = "dm" if outcome["workload"] == "dm" else "100"
        probe = probes.get(size)
        if probe and probe["parley_deliveries_per_s"]:
            lines.append(
                f"| Parley deliveries/s, {_size(size)}: independent closed loop vs the probe "
                f"| {_n(outcome['deliveries_per_s'])} | {_n(probe['parley_deliveries_per_s'])} (probe) "
                f"| {outcome['deliveries_per_s'] / probe['parley_deliveries_per_s']:.2f} |"
            )
    p, f = gateway.get("connections_parley", {}), gateway.get("connections_floor", {})
    if p.get("connections") and f.get("connections"):
        pc, fc = p["connections"], f["connections"]
        lines.append(
            f"| RSS per idle connection ({pc['connections']:,}) | {pc['rss_per_connection_kb']:.1f} KB "
            f"| {fc['rss_per_connection_kb']:.1f} KB | {pc['rss_per_connection_kb'] / fc['rss_per_connection_kb']:.1f} |"
        )
        lines.append(
            f"| connect + identify rate | {_n(pc['connect_per_s'])}/s | {_n(fc['connect_per_s'])}/s "
            f"| {pc['connect_per_s'] / fc['connect_per_s']:.2f} |"
        )
        if pc.get("connect_cpu_ms") and fc.get("connect_cpu_ms"):
            # The same, per server CPU-second: what a loaded machine does not move.
            lines.append(
                f"| connect + identify per server CPU-second | {1000 / pc['connect_cpu_ms']:,.0f}/s "
                f"| {1000 / fc['connect_cpu_ms']:,.0f}/s | {fc['connect_cpu_ms'] / pc['connect_cpu_ms']:.2f} |"
            )
    if p.get("storm") and f.get("storm") and p["storm"]["all_resumed_s"] and f["storm"]["all_resumed_s"]:
        ps, fs = p["storm"], f["storm"]
        lines.append(
            f"| reconnect storm of {ps['clients']:,}: all resumed after | {_ms(ps['all_resumed_s'])} s "
            f"| {_ms(fs['all_resumed_s'])} s | {ps['all_resumed_s'] / fs['all_resumed_s']:.1f} |"
        )
    for step in (gateway.get("multinode") or {}).get("steps", []):
        a, b = step["same_node"], step["across_nodes"]
        if a.get("p99_ms") and b.get("p99_ms"):
            lines.append(
                f"| p99 ms at {step['rate']:g} msgs/s to a group of 100: across Redis vs same node "
                f"| {_ms(b['p99_ms'])} | {_ms(a['p99_ms'])} (same node) | {b['p99_ms'] / a['p99_ms']:.2f} |"
            )
    lines += workers_headline(result.get("workers"))
    for run in result.get("group_commit", []):
        lines.append(
            f"| group commit on {run['database']} (vs one transaction per message) "
            f"| {_n(run['parley']['messages_per_second'])} msgs/s | – | {run['ratio']:.2f}× |"
        )
    return lines


def markdown(result: dict[str, Any], plots: list[str]) -> str:
    meta = result["meta"]
    gateway = result.get("gateway", {})
    out = [
        f"## {meta['started']} — `{meta['command']}` ({meta['mode']})",
        "",
        f"- **Command:** `{meta['command']}` (`{meta['argv']}`), {meta['seconds']:.0f} s",
        f"- **Commit:** `{meta['commit']}`",
        f"- **Machine:** {meta['machine']}",
    ]
    if gateway:
        out.append(
            f"- **Pinning:** {gateway['pinning']}; {gateway['load_processes']} load processes; "
            f"the load offers permessage-deflate, the servers run with `PARLEY_GATEWAY_COMPRESSION` "
            f"{'on' if meta.get('compression') else 'off (the default)'}"
        )
    out += ["", "#### Headline", "", *headline(result), "", "#### Targets (DESIGN §4)", "",
            "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t} | {m} | **{v}** |" for t, m, v in targets(result)]
    out.append("")
    if meta.get("notes"):
        out += [f"- {note}" for note in meta["notes"]] + [""]
    if gateway.get("fanout"):
        out += fanout_tables(gateway["fanout"]) + [""]
    out += closed_loop_tables(result)
    out += multinode_tables(gateway.get("multinode"))
    out += workers_tables(result.get("workers"))
    out += connection_tables(gateway)
    out += history_tables(result.get("history", []))
    out += group_commit_tables(result.get("group_commit", []))
    for plot in plots:
        out.append(f"![{Path(plot).stem}]({plot})")
    out.append("")
    return "\n".join(out)


# --- plots


def plot(result: dict[str, Any], directory: Path, suffix: str) -> list[str]:
    """PNG plots into ``directory``; returns their paths relative to docs/."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots", file=sys.stderr)
        return []
    directory.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    gateway = result.get("gateway", {})
    fanout = gateway.get("fanout")
    if fanout:
        sizes = [row["size"] for row in fanout["summary"]]
        figure, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.8), squeeze=False)
        for axis, size in zip(axes[0], sizes, strict=True):
            for target, colour in (("parley", "tab:blue"), ("floor", "tab:gray")):
                steps = sorted(
                    (s for s in fanout["steps"] if s["size"] == size and s["target"] == target
                     and s["kind"] == "rate" and s["latency"]["p99_ms"]),
                    key=lambda s: s["offered_rate"],
                )
                if not steps:
                    continue
                rates = [s["offered_rate"] for s in steps]
                axis.plot(rates, [s["latency"]["p99_ms"] for s in steps], "o-", color=colour, label=f"{target} p99")
                axis.plot(rates, [s["latency"]["p50_ms"] for s in steps], "o--", color=colour, alpha=0.6,
                          label=f"{target} p50")
            axis.axhline(TARGET_P99_MS, color="tab:red", linewidth=0.8, linestyle=":", label="50 ms")
            axis.set_yscale("log")
            axis.set_title(_size(size))
            axis.set_xlabel("offered messages/s")
            axis.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("end-to-end latency, ms")
        axes[0][0].legend(fontsize="small")
        figure.suptitle("Latency against rate: Parley and the floor, same run")
        figure.tight_layout()
        name = directory / f"latency-vs-rate{suffix}.png"
        figure.savefig(name, dpi=110)
        plt.close(figure)
        made.append(f"benchmarks/{name.name}")
    series = [(kind, gateway.get(f"connections_{kind}", {}).get("connections")) for kind in ("parley", "floor")]
    if any(c for _, c in series):
        figure, axis = plt.subplots(figsize=(6, 4))
        for kind, c in series:
            if c:
                points = c["rss_points_mb"]
                axis.plot([n for n, _ in points], [mb for _, mb in points], "o-", label=kind,
                          color="tab:blue" if kind == "parley" else "tab:gray")
        axis.set_xlabel("idle connections")
        axis.set_ylabel("server RSS, MB")
        axis.set_title("Server memory against connections")
        axis.grid(True, alpha=0.3)
        axis.legend()
        figure.tight_layout()
        name = directory / f"rss-vs-connections{suffix}.png"
        figure.savefig(name, dpi=110)
        plt.close(figure)
        made.append(f"benchmarks/{name.name}")
    return made


def main() -> int:
    result = json.loads(Path(sys.argv[1]).read_text())
    suffix = "" if result["meta"]["mode"] == "full" else "-short"
    plots = sys.argv[2:] or [f"benchmarks/latency-vs-rate{suffix}.png", f"benchmarks/rss-vs-connections{suffix}.png"]
    print(markdown(result, plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
