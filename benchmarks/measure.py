"""Pure arithmetic on measurements: percentiles, rates, request deltas."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the value at or below which pct% of samples lie); nan if none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of latencies given in seconds, reported in milliseconds."""
    return {"n": len(seconds),
            "p50_ms": percentile(seconds, 50) * 1000,
            "p99_ms": percentile(seconds, 99) * 1000,
            "max_ms": (max(seconds) * 1000) if seconds else math.nan}


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per-key increase between two counter snapshots (keys that did not change are left out)."""
    out = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    return {k: v for k, v in sorted(out.items()) if v}


def steady_rate(samples: Sequence[tuple[float, int]], skip_count: int) -> float:
    """Requests per second from (time, cumulative count) samples, measured only after the
    first `skip_count` requests (the burst allowance) had gone out; nan without enough data."""
    after = [(t, n) for t, n in samples if n >= skip_count]
    if len(after) < 2 or after[-1][0] <= after[0][0]:
        return math.nan
    (t0, n0), (t1, n1) = after[0], after[-1]
    return (n1 - n0) / (t1 - t0)


def ratio(baseline: float, ours: float) -> float:
    """How many times more the baseline costs (inf when ours rounds to zero)."""
    if ours <= 0:
        return math.inf
    return baseline / ours


def max_increase(samples: Sequence[tuple[float, int]], window: float) -> int:
    """Largest growth of a cumulative count between two samples at most `window` apart."""
    best, start = 0, 0
    for end in range(len(samples)):
        while samples[end][0] - samples[start][0] > window:
            start += 1
        best = max(best, samples[end][1] - samples[start][1])
    return best


def evenly(items: Sequence[str], count: int) -> list[str]:
    """`count` items spread evenly over the sequence (all of them if it is shorter)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


SATURATED = 0.9   # of a core: kgahp's Python, and the simulator's, run on one at a time


def bottleneck(gahp_busy: float, server_busy: float | None, handshake_share: float) -> str:
    """What paced a submit burst. A process using (nearly) a whole core; failing that, the
    gridmanager's one-command-at-a-time `S` handshake when waiting for it filled most of the
    burst; "n/a" when neither is clear (a real server's CPU is not known)."""
    if gahp_busy >= SATURATED:
        return "kgahp"
    if server_busy is not None and server_busy >= SATURATED:
        return "sim"
    if handshake_share >= 0.5:
        return "the S handshake"
    return "n/a"
