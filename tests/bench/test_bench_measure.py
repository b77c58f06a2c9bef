"""The benchmark's arithmetic and /proc parsing: figures in the README come from these."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import measure, procstat


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]          # 1..100
    assert measure.percentile(values, 50) == 50.0
    assert measure.percentile(values, 99) == 99.0
    assert measure.percentile(values, 100) == 100.0
    assert measure.percentile([7.0], 99) == 7.0
    assert math.isnan(measure.percentile([], 50))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.floats(0.1, 100))
def test_percentile_is_a_sample_with_enough_below(values: list[float], pct: float) -> None:
    p = measure.percentile(values, pct)
    assert p in values
    assert sum(v <= p for v in values) >= pct / 100 * len(values)
    assert sum(v < p for v in values) < max(1, pct / 100 * len(values)) + 1e-9


def test_summary_is_in_milliseconds() -> None:
    s = measure.summary_ms([0.001, 0.002, 0.003])
    assert s["n"] == 3
    assert math.isclose(s["p50_ms"], 2.0)
    assert math.isclose(s["max_ms"], 3.0)


def test_delta_keeps_only_changes() -> None:
    before = {"create/pods/": 3, "get/pods/": 1, "list/pods/": 2}
    after = {"create/pods/": 10, "get/pods/": 1, "list/pods/": 2, "watch/pods/": 1}
    assert measure.delta(after, before) == {"create/pods/": 7, "watch/pods/": 1}


def test_steady_rate_ignores_the_burst() -> None:
    # 40 requests at once, then 20 per second for 5 seconds
    samples = [(0.0, 0), (0.01, 40)] + [(0.01 + i * 0.5, 40 + 10 * i) for i in range(1, 11)]
    assert math.isclose(measure.steady_rate(samples, 40), 20.0)
    assert math.isnan(measure.steady_rate([(0.0, 1)], 0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.001, 2.0), st.integers(0, 50)), min_size=1, max_size=60),
       st.floats(0.1, 3.0))
def test_max_increase_matches_brute_force(steps: list[tuple[float, int]], window: float) -> None:
    samples, t, n = [], 0.0, 0
    for dt, dn in steps:
        t, n = t + dt, n + dn
        samples.append((t, n))
    brute = max(b[1] - a[1] for i, a in enumerate(samples) for b in samples[i:]
                if b[0] - a[0] <= window)
    assert measure.max_increase(samples, window) == brute


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(1, 300))
def test_evenly_picks_distinct_items_across_the_range(size: int, count: int) -> None:
    items = [str(i) for i in range(size)]
    picked = measure.evenly(items, count)
    assert len(picked) == min(size, count)
    assert len(set(picked)) == len(picked)
    assert picked == sorted(picked, key=int)
    if size and count < size:
        assert picked[0] == "0" and int(picked[-1]) >= size - size / count - 1


def test_ratio() -> None:
    assert measure.ratio(10.0, 2.0) == 5.0
    assert measure.ratio(1.0, 0.0) == math.inf


def test_stat_cpu_with_a_nasty_command_name() -> None:
    # comm may contain spaces and ')' ; utime/stime are fields 14 and 15
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 30
    text = "1234 (we) ird (name) " + " ".join(fields)
    assert procstat.parse_stat_cpu(text, ticks=100) == 3.0


def test_schedstat_cpu_is_its_first_field_in_nanoseconds() -> None:
    assert procstat.parse_schedstat_cpu("1500000000 2000 37\n") == 1.5


def test_status_memory_in_bytes() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t4\n"
    assert procstat.parse_status_memory(text) == (100 * 2**20, 200 * 2**20)


def test_thread_roles_drop_the_worker_number_and_name_the_main_thread() -> None:
    assert procstat.thread_role("gahp-submit-12", is_main=False) == "gahp-submit"
    assert procstat.thread_role("reconcile-0", is_main=False) == "reconcile"
    assert procstat.thread_role("watch-default", is_main=False) == "watch-default"
    assert procstat.thread_role("watch-ns-2024", is_main=False) == "watch-ns"
    assert procstat.thread_role("log-writer", is_main=False) == "log-writer"
    assert procstat.thread_role("kgahp", is_main=True) == "main (protocol)"
    assert procstat.parse_voluntary_switches(
        "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n") == 42


def test_usage_between_is_per_role_and_counts_a_new_thread_whole() -> None:
    before = {"gahp-submit": procstat.ThreadUse(1.0, 10, 16)}
    after = {"gahp-submit": procstat.ThreadUse(1.5, 25, 16),
             "reconcile": procstat.ThreadUse(0.2, 3, 4)}
    assert procstat.usage_between(before, after) == {
        "gahp-submit": procstat.ThreadUse(0.5, 15, 16), "reconcile": procstat.ThreadUse(0.2, 3, 4)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_thread_usage_sums_the_workers_of_one_kind() -> None:
    from kgahp.threads import start_daemon

    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(i * i for i in range(20_000))
            stop.wait(0.001)

    workers = [start_daemon(burn, f"bench-burn-{i}") for i in range(3)]
    try:
        time.sleep(0.3)
        before = procstat.thread_usage(os.getpid())
        time.sleep(0.3)
        spent = procstat.usage_between(before, procstat.thread_usage(os.getpid()))
    finally:
        stop.set()
        for w in workers:
            w.join(5)
    assert "main (protocol)" in before
    assert spent["bench-burn"].cpu_seconds > 0 and spent["bench-burn"].threads == 3
    assert spent["bench-burn"].voluntary_switches >= 3      # each worker slept on its wait
    assert not any(role.startswith("bench-burn-") for role in spent)


def test_sample_of_this_process_is_plausible() -> None:
    burn = sum(i * i for i in range(200_000))    # some CPU time to see
    s = procstat.sample(os.getpid())
    assert burn > 0 and s.cpu_seconds > 0
    assert 10 * 2**20 < s.rss_bytes <= s.peak_rss_bytes
    assert procstat.cpu_count() >= 1


@pytest.mark.parametrize("gahp, server, share, paced_by", [
    (0.95, 0.70, 0.60, "kgahp"),             # a saturated process comes first
    (0.60, 0.93, 0.60, "sim"),
    (0.77, 0.72, 0.62, "the S handshake"),   # neither saturated, waiting for S most of the time
    (0.77, 0.72, 0.30, "n/a"),
    (0.50, None, 0.70, "the S handshake"),   # a real server: its CPU is unknown
    (0.50, None, 0.20, "n/a"),
])
def test_what_paced_a_submit_burst(gahp: float, server: float | None, share: float,
                                   paced_by: str) -> None:
    assert measure.bottleneck(gahp, server, share) == paced_by
