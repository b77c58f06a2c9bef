"""`python benchmarks/compare.py NAME=results.json[,results.json...] NAME=...`: medians of the
stepped scale phase's figures over several runs of each version, side by side (how the
before/after of a change is reported). Each results.json comes from
`run.py --phases scale [--kgahp-python OTHER/.venv/bin/python]`.

`python benchmarks/compare.py --tiers results.json,results.json,... [--chart out.png]`: the scale
tiers' figures, median over the runs with their range, one row per tier (markdown); with
--chart also their chart (medians, bars from lowest to highest)."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:          # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

ROWS: list[tuple[str, Callable[[dict[str, Any]], float], int]] = [
    ("submits per second", lambda r: r["scale"]["submit"]["per_second"], 0),
    ("kgahp CPU ms per submit", lambda r: r["scale"]["submit"]["cpu_ms_per_submit"], 2),
    ("sim CPU ms per submit", lambda r: r["scale"]["submit"]["sim_cpu_ms_per_submit"] or 0, 2),
    ("status p50 ms (one at a time)", lambda r: r["scale"]["steps"][-1]["isolated"]["p50_ms"], 3),
    ("status p99 ms (one at a time)", lambda r: r["scale"]["steps"][-1]["isolated"]["p99_ms"], 3),
    ("status p99 ms (50 in flight)", lambda r: r["scale"]["steps"][-1]["burst"]["p99_ms"], 1),
    ("kgahp CPU ms per status", lambda r: r["scale"]["steps"][-1]["burst"]["cpu_ms_per_status"],
     3),
    ("peak RSS MB", lambda r: r["scale"]["steps"][-1]["peak_rss_mb"], 0),
    ("recovery s (SIGKILL to every job right)", lambda r: r["scale"]["recovery"]["seconds"], 2),
    ("recovery kgahp CPU s", lambda r: r["scale"]["recovery"]["gahp_cpu_seconds"], 2),
    ("recovery API requests", lambda r: r["scale"]["recovery"]["api_requests"], 0),
    ("load average (1 min) at start", lambda r: r["meta"]["load_average_at_start"], 1),
]


def load(paths: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(versions: dict[str, list[dict[str, Any]]]) -> str:
    names = list(versions)
    head = f"| {'':<42} | " + " | ".join(f"{n} (median of {len(versions[n])})"
                                          for n in names)
    lines = [head, "|---|" + "---|" * len(names)]
    for label, get, digits in ROWS:
        cells = []
        for name in names:
            values = [get(r) for r in versions[name]]
            runs = ", ".join(f"{v:.{digits}f}" for v in values)
            cells.append(f"{median(values):.{digits}f} ({runs})")
        lines.append(f"| {label:<42} | " + " | ".join(cells))
    kgahp = {n: {r["meta"].get("kgahp_version", "?") for r in versions[n]} for n in names}
    lines.append("")
    lines += [f"{n}: kgahp {', '.join(sorted(kgahp[n]))}" for n in names]
    return "\n".join(lines)


TIER_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], float], int, str]] = [
    ("kgahp RSS", lambda t: t["rss_mb"], 0, " MB"),
    ("status p50", lambda t: t["isolated"]["p50_ms"], 2, " ms"),
    ("status p99", lambda t: t["isolated"]["p99_ms"], 2, " ms"),
    ("API requests per status", lambda t: t["burst"]["api_requests_per_status"], 0, ""),
    ("recovery (sample right)", lambda t: t["recovery"]["sample_right_seconds"], 1, " s"),
    ("every job right", lambda t: t["recovery"]["every_job_right_seconds"], 1, " s"),
    ("recovery API requests", lambda t: t["recovery"]["api_requests"], 0, ""),
    ("expected (pages + watches)", lambda t: t["recovery"]["expected_requests"], 0, ""),
    ("event throughput", lambda t: (t.get("events") or {}).get("throughput_per_second",
                                                                 float("nan")), 0, "/s"),
    ("event lag p99", lambda t: ((t.get("events") or {}).get("lag") or {}).get(
        "p99_ms", float("nan")) / 1000, 1, " s"),
    ("kgahp CPU per event", lambda t: (t.get("events") or {}).get("gahp_cpu_ms_per_event",
                                                                    float("nan")), 2, " ms"),
    ("load average", lambda t: t["load_average_at_start"], 1, ""),
]


def tiers_table(runs: Sequence[dict[str, Any]]) -> str:
    by_tier: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        for row in run["tiers"]["tiers"]:
            by_tier.setdefault(row["tracked"], []).append(row)
    lines = ["| tracked jobs | namespaces | " + " | ".join(c[0] for c in TIER_COLUMNS) + " |",
             "|---" * (len(TIER_COLUMNS) + 2) + "|"]
    for tracked in sorted(by_tier):
        rows = by_tier[tracked]
        cells = []
        for _, get, digits, unit in TIER_COLUMNS:
            values = sorted(get(r) for r in rows)
            mid = median(values)
            low, high = f"{values[0]:.{digits}f}", f"{values[-1]:.{digits}f}"
            spread = "" if low == high else f" ({low}–{high})"
            cells.append(f"{mid:,.{digits}f}{unit}{spread}")
        lines.append(f"| {tracked:,} | {rows[0]['namespaces']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) in (2, 4) and args[0] == "--tiers":
        runs = load(args[1].split(","))
        print(tiers_table(runs))
        if len(args) == 4 and args[2] == "--chart":
            from benchmarks import tiers

            tiers.chart_runs(runs, args[3])
        return 0
    versions: dict[str, list[dict[str, Any]]] = {}
    for arg in args:
        name, sep, paths = arg.partition("=")
        if not sep or not paths:
            print(__doc__, file=sys.stderr)
            return 2
        versions[name] = load(paths.split(","))
    if not versions:
        print(__doc__, file=sys.stderr)
        return 2
    print(table(versions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
