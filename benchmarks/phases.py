"""The benchmark phases. Each starts its own kgahp (its own INSTANCE label and state), drives it
as the gridmanager does, and returns plain data for the report."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

from benchmarks import procstat
from benchmarks.gahpclient import (
    BenchDriver,
    Timed,
    failures,
    gahp_knobs,
    pipeline,
    start_gahp,
    status_requests,
    submit_requests,
)
from benchmarks.measure import delta, evenly, max_increase, steady_rate, summary_ms
from benchmarks.simproc import SimProcess
from kgahp.model import COMPLETED, RUNNING
from kgahp.podspec import names

FAST_API = {"QPS": "1000", "BURST": "2000"}   # throughput phases: the sim, not pacing, limits
DEFAULT_API = {"QPS": "20", "BURST": "40"}     # kgahp's defaults (KGAHP_QPS, KGAHP_BURST)
NAMESPACE = "default"
Say = Callable[[str], None]


class Bench:
    """What every phase needs: the sim process, a kubeconfig, a scratch directory, a logger."""

    def __init__(self, sim: SimProcess, kubeconfig: str, workdir: str, say: Say,
                 log_level: str = "INFO", argv: Optional[Sequence[str]] = None) -> None:
        self.sim = sim
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.say = say
        self.log_level = log_level
        self.argv = argv
        self.iwd = os.path.join(workdir, "iwd")
        os.makedirs(self.iwd, exist_ok=True)

    def start(self, name: str, **knobs: str) -> tuple[BenchDriver, dict[str, str]]:
        all_knobs = gahp_knobs(self.kubeconfig, self.workdir, name, DEBUG=self.log_level,
                               **knobs)
        stderr = open(os.path.join(self.workdir, name, "stderr"), "ab")
        driver = start_gahp(all_knobs, stderr, self.argv)
        code, msg = driver.ping()
        if code != 0:
            raise RuntimeError(f"kgahp ping failed: {msg}")
        return driver, all_knobs

    def label(self, name: str) -> str:
        return f"{names.LABEL_INSTANCE}={name}"

    def wait_phase(self, name: str, want: Callable[[dict[str, int]], bool],
                   timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            phases = self.sim.phases(NAMESPACE, self.label(name))
            if want(phases) or time.monotonic() > deadline:
                return phases
            time.sleep(0.25)


def _check(results: Sequence[Timed], what: str, want_status: Optional[int] = None) -> None:
    bad = failures(results, want_status)
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(results)} {what} failed, e.g. {bad[0][:4]}")


def _per(total: float, count: int) -> float:
    return total / count if count else float("nan")


# ------------------------------------------------------------------------------- job life
def job_life(bench: Bench, jobs: int, poll_interval: float = 1.0) -> dict[str, Any]:
    """API requests over whole job lives: submit, polled until COMPLETED, pod cleaned up."""
    name = "bench-life"
    driver, _ = bench.start(name, POD_RETENTION="0", **FAST_API)
    try:
        time.sleep(1.0)                       # let the pod cache list and start watching
        before = bench.sim.stats()
        started = time.monotonic()
        submitted = pipeline(driver, submit_requests(bench.iwd, "life", jobs,
                                                     "sim.invalid/ok:2s"))
        _check(submitted, "submits")
        open_ids = [t.result[3] for t in submitted]
        statuses = 0
        while open_ids:
            time.sleep(poll_interval)
            polled = pipeline(driver, status_requests(open_ids))
            _check(polled, "status queries")
            statuses += len(polled)
            open_ids = [job_id for job_id, t in zip(open_ids, polled)
                        if t.result[3] != str(COMPLETED)]
            if time.monotonic() - started > 120:
                raise RuntimeError(f"{len(open_ids)} jobs did not complete within 120 s")
        left = bench.wait_phase(name, lambda p: not p, 60)
        after = bench.sim.stats()
    finally:
        driver.close()
    requests = delta(after, before)
    total = sum(requests.values())
    return {"jobs": jobs, "image": "sim.invalid/ok:2s", "status_queries": statuses,
            "seconds": time.monotonic() - started, "pods_left": sum(left.values()),
            "requests": requests, "requests_per_job": _per(total, jobs)}


# ------------------------------------------------------------------------------- scale
def checkpoints(jobs: int) -> list[int]:
    return [c for c in (100, 1000, 2500, 5000, 10000) if c < jobs] + [jobs]


def _status_burst(bench: Bench, driver: BenchDriver, job_ids: Sequence[str],
                  count: int) -> dict[str, Any]:
    """`count` status queries, 50 in flight (the gridmanager's limit): latency, CPU, API use."""
    targets = evenly(job_ids, count)
    cpu0, api0 = procstat.sample(driver.pid).cpu_seconds, bench.sim.total_requests()
    client0 = procstat.sample(os.getpid()).cpu_seconds
    t0 = time.monotonic()
    timed = pipeline(driver, status_requests(targets))
    elapsed = time.monotonic() - t0
    cpu1, api1 = procstat.sample(driver.pid).cpu_seconds, bench.sim.total_requests()
    client_busy = (procstat.sample(os.getpid()).cpu_seconds - client0) / elapsed
    _check(timed, "status queries", RUNNING)
    return {**summary_ms([t.latency for t in timed]),
            "immediate": summary_ms([t.immediate for t in timed]),
            "per_second": len(timed) / elapsed,
            "cpu_ms_per_status": _per(cpu1 - cpu0, len(timed)) * 1000,
            "gahp_cpu_utilisation": (cpu1 - cpu0) / elapsed,
            "client_cpu_utilisation": client_busy,
            "api_requests_per_status": _per(api1 - api0, len(timed))}


def _status_isolated(driver: BenchDriver, sim_pid: int, job_ids: Sequence[str], count: int,
                     gap: float = 0.0) -> dict[str, Any]:
    """One query at a time (nothing queued), optionally paced `gap` seconds apart. Also how
    busy the sim was meanwhile: on two cores its background work competes with kgahp."""
    timed: list[Timed] = []
    sim0, t0 = procstat.sample(sim_pid).cpu_seconds, time.monotonic()
    for job_id in evenly(job_ids, count):
        timed += pipeline(driver, status_requests([job_id]), window=1)
        if gap:
            time.sleep(gap)
    sim_busy = (procstat.sample(sim_pid).cpu_seconds - sim0) / (time.monotonic() - t0)
    _check(timed, "status queries", RUNNING)
    return {**summary_ms([t.latency for t in timed]),
            "immediate": summary_ms([t.immediate for t in timed]),
            "sim_cpu_utilisation": sim_busy, "load_average": os.getloadavg()[0]}


def _running_at_least(count: int) -> Callable[[dict[str, int]], bool]:
    return lambda phases: phases.get("Running", 0) >= count


def scale(bench: Bench, jobs: int, paced_samples: int = 50) -> dict[str, Any]:
    """Submit in steps up to `jobs` tracked (running) jobs; at each step measure status latency,
    CPU and RSS; at the end SIGKILL kgahp and time the recovery of every status."""
    name = "bench-scale"
    driver, knobs = bench.start(name, **FAST_API)
    job_ids: list[str] = []
    steps: list[dict[str, Any]] = []
    submit_seconds = submit_cpu = sim_cpu = 0.0
    submit_api0 = bench.sim.total_requests()
    try:
        time.sleep(1.0)
        for target in checkpoints(jobs):
            count = target - len(job_ids)
            bench.say(f"  submitting {count} jobs (to {target} tracked)")
            requests = submit_requests(bench.iwd, "scale", count, "sim.invalid/sleep",
                                       start=len(job_ids))
            gahp0, sim0 = procstat.sample(driver.pid), procstat.sample(bench.sim.pid)
            t0 = time.monotonic()
            timed = pipeline(driver, requests)
            seconds = time.monotonic() - t0
            gahp_cpu = procstat.sample(driver.pid).cpu_seconds - gahp0.cpu_seconds
            step_sim_cpu = procstat.sample(bench.sim.pid).cpu_seconds - sim0.cpu_seconds
            submit_seconds += seconds
            submit_cpu += gahp_cpu
            sim_cpu += step_sim_cpu
            _check(timed, "submits")
            job_ids += [t.result[3] for t in timed]
            submit_step = {"jobs": count, "per_second": count / seconds,
                           "gahp_cpu_ms_per_submit": gahp_cpu / count * 1000,
                           "sim_cpu_ms_per_submit": step_sim_cpu / count * 1000,
                           "load_average": os.getloadavg()[0]}
            phases = bench.wait_phase(name, _running_at_least(target), 300)
            if phases.get("Running", 0) < target:
                raise RuntimeError(f"only {phases} of {target} pods running")
            time.sleep(1.0)                   # let the watch deliver the last updates
            bench.say(f"  measuring status at {target} tracked jobs")
            step: dict[str, Any] = {"tracked": target, "submit": submit_step}
            step["isolated"] = _status_isolated(driver, bench.sim.pid, job_ids, min(200, target))
            step["burst"] = _status_burst(bench, driver, job_ids, min(2000, target))
            mem = procstat.sample(driver.pid)
            step["rss_mb"] = mem.rss_bytes / 2**20
            step["peak_rss_mb"] = mem.peak_rss_bytes / 2**20
            steps.append(step)
        submit_api = bench.sim.total_requests() - submit_api0
        bench.say(f"  paced status queries (5/s) at {len(job_ids)} tracked jobs")
        paced = _status_isolated(driver, bench.sim.pid, job_ids, paced_samples, gap=0.2)
        bench.say(f"  SIGKILL kgahp at {len(job_ids)} tracked jobs; timing recovery")
        driver.kill()
        # the restarted kgahp paces itself as a site's would (default QPS and BURST)
        recovery = _recover(bench, {**knobs, **DEFAULT_API}, job_ids)
    finally:
        if driver.proc.poll() is None:
            driver.close()
    return {"jobs": len(job_ids), "steps": steps, "paced": paced,
            "submit": {"jobs": len(job_ids), "seconds": submit_seconds,
                       "per_second": len(job_ids) / submit_seconds,
                       "cpu_ms_per_submit": _per(submit_cpu, len(job_ids)) * 1000,
                       "gahp_cpu_utilisation": submit_cpu / submit_seconds,
                       "sim_cpu_utilisation": sim_cpu / submit_seconds,
                       "sim_cpu_ms_per_submit": _per(sim_cpu, len(job_ids)) * 1000,
                       "bottleneck": "kgahp" if submit_cpu >= sim_cpu else "sim",
                       "one_core_capacity_per_second": len(job_ids) / max(submit_cpu, 1e-9),
                       "api_requests_per_submit": _per(submit_api, len(job_ids))},
            "recovery": recovery}


def _recover(bench: Bench, knobs: dict[str, str], job_ids: Sequence[str]) -> dict[str, Any]:
    """Start a new kgahp on the same state; time until every status is answered RUNNING."""
    api0 = bench.sim.total_requests()
    client0 = procstat.sample(os.getpid()).cpu_seconds
    t0 = time.monotonic()
    stderr = open(os.path.join(bench.workdir, "bench-scale", "stderr.2"), "ab")
    driver = start_gahp(knobs, stderr, bench.argv)
    try:
        banner = time.monotonic() - t0
        pending, rounds, wrong = list(job_ids), 0, 0
        while pending and time.monotonic() - t0 < 120:
            rounds += 1
            timed = pipeline(driver, status_requests(pending))
            still = [j for j, t in zip(pending, timed)
                     if t.result[1] != "0" or t.result[3] != str(RUNNING)]
            wrong += len(still)
            pending = still
        seconds = time.monotonic() - t0
        mem = procstat.sample(driver.pid)
        client_cpu = procstat.sample(os.getpid()).cpu_seconds - client0
    finally:
        driver.close()
    return {"jobs": len(job_ids), "seconds": seconds, "banner_seconds": banner,
            "rounds": rounds, "wrong_answers": wrong, "unanswered": len(pending),
            "api_requests": bench.sim.total_requests() - api0,
            "rss_mb_after": mem.rss_bytes / 2**20, "gahp_cpu_seconds": mem.cpu_seconds,
            "client_cpu_seconds": client_cpu}


# ------------------------------------------------------------------------------- rate limit
def rate_limit(bench: Bench, jobs: int, qps: int = 20, burst: int = 40) -> dict[str, Any]:
    """With the default pacing knobs, submit faster than allowed and watch the sim's rate."""
    name = "bench-qps"
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def sample() -> None:
        while not stop.is_set():
            with lock:
                samples.append((time.monotonic(), bench.sim.total_requests()))
            stop.wait(0.05)

    base = bench.sim.total_requests()
    sampler = threading.Thread(target=sample, name="rate-sampler", daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:
        driver, _ = bench.start(name, QPS=str(qps), BURST=str(burst))
        try:
            timed = pipeline(driver, submit_requests(bench.iwd, "qps", jobs, "sim.invalid/sleep"))
            _check(timed, "submits")
        finally:
            driver.close()
    finally:
        stop.set()
        sampler.join()
    counted = [(t, n - base) for t, n in samples]
    total = counted[-1][1] if counted else 0
    first = next((t for t, n in counted if n > 0), t0)
    last = next((t for t, n in counted if n >= total), time.monotonic())
    return {"qps": qps, "burst": burst, "jobs": jobs, "requests": total,
            "seconds": last - first,
            "achieved_rate": steady_rate(counted, burst),
            "max_in_1s": max_increase(counted, 1.0),
            "allowed_in_1s": burst + qps}
