"""`python benchmarks/compare.py NAME=results.json[,results.json...] NAME=...`: medians of the
stepped scale phase's figures over several runs of each version, side by side (how the
before/after of a change is reported). Each results.json comes from
`run.py --phases scale [--kgahp-python OTHER/.venv/bin/python]`."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any, Callable, Optional

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
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
