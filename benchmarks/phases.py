"""The benchmark phases. Each starts its own kgahp (its own INSTANCE label and state), drives it
as the gridmanager does, and returns plain data for the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from benchmarks import procstat, reqlog
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
from benchmarks.measure import bottleneck, delta, evenly, steady_rate, summary_ms
from benchmarks.target import ClusterTarget, Workload, instance_label
from kgahp.model import COMPLETED, RUNNING

FAST_API = {"QPS": "1000", "BURST": "2000"}   # throughput phases: the server, not pacing, limits
DEFAULT_API = {"QPS": "20", "BURST": "40"}     # kgahp's defaults (KGAHP_QPS, KGAHP_BURST)
WORKERS = 50                                   # kgahp's KGAHP_WORKERS default: its API threads
COUNTED_KGAHP = [sys.executable, str(Path(__file__).with_name("counted_kgahp.py"))]
FLUSH_WAIT = 0.15                              # counted_kgahp writes its log every 50 ms
Say = Callable[[str], None]


class Bench:
    """What every phase needs: the target cluster, a scratch directory, a logger. Every kgahp
    it starts logs its own API requests (counted_kgahp.py), which is how requests are counted
    on a cluster that is not the built-in simulator."""

    def __init__(self, target: ClusterTarget, workdir: str, say: Say,
                 log_level: str = "INFO", argv: Optional[Sequence[str]] = None,
                 workload: str = "pod", workers: int = WORKERS) -> None:
        self.target = target
        self.workload = workload      # KGAHP_WORKLOAD of every kgahp started: pod or job
        self.workers = workers        # KGAHP_WORKERS of every kgahp started
        self.kubeconfig = target.kubeconfig
        self.workdir = workdir
        self.say = say
        self.log_level = log_level
        self.argv = argv
        self.iwd = os.path.join(workdir, "iwd")
        os.makedirs(self.iwd, exist_ok=True)
        self._starts = 0

    @property
    def namespace(self) -> str:
        return self.target.namespace

    def knobs(self, name: str, **knobs: str) -> dict[str, str]:
        extra = {"NAMESPACE": self.namespace, "DEBUG": self.log_level,
                 "WORKLOAD": self.workload, "WORKERS": str(self.workers), **knobs}
        if self.target.context:
            extra["CONTEXT"] = self.target.context
        return gahp_knobs(self.kubeconfig, self.workdir, name, **extra)

    def launch(self, name: str, knobs: dict[str, str]) -> BenchDriver:
        """Start kgahp `name` with these knobs (its request log and stderr in its folder)."""
        self._starts += 1
        folder = os.path.join(self.workdir, name)
        os.makedirs(folder, exist_ok=True)
        stderr = open(os.path.join(folder, f"stderr.{self._starts}"), "ab")
        env = {"KGAHP_BENCH_REQUEST_LOG": os.path.join(folder, f"requests.{self._starts}.log")}
        return start_gahp(knobs, stderr, self.argv or COUNTED_KGAHP, env)

    def start(self, name: str, **knobs: str) -> tuple[BenchDriver, dict[str, str]]:
        all_knobs = self.knobs(name, **knobs)
        driver = self.launch(name, all_knobs)
        code, msg = driver.ping()
        if code != 0:
            raise RuntimeError(f"kgahp ping failed: {msg}")
        return driver, all_knobs

    def client_requests(self, name: str) -> list[reqlog.Request]:
        """Every API request the kgahp processes named `name` sent so far (client side)."""
        time.sleep(FLUSH_WAIT)
        folder = Path(self.workdir) / name
        return reqlog.read(str(p) for p in sorted(folder.glob("requests.*.log")))

    def label(self, name: str) -> str:
        return instance_label(name)

    def wait_phase(self, name: str, want: Callable[[dict[str, int]], bool],
                   timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            phases = self.target.phases(self.label(name))
            if want(phases) or time.monotonic() > deadline:
                return phases
            time.sleep(0.25 if self.target.is_sim else 1.0)

    def server_requests(self) -> Optional[int]:
        return self.target.server_requests()

    def server_cpu(self) -> Optional[float]:
        return self.target.server_cpu()


def _minus(after: Optional[float], before: Optional[float]) -> Optional[float]:
    return None if after is None or before is None else after - before


def _per_opt(total: Optional[float], count: int) -> Optional[float]:
    return None if total is None else _per(total, count)


def _ms_per(seconds: Optional[float], count: int) -> Optional[float]:
    return None if seconds is None else _per(seconds, count) * 1000


def _in(requests: Sequence[reqlog.Request], windows: Sequence[tuple[float, float]]) -> int:
    return sum(1 for r in requests if any(a <= r.sent <= b for a, b in windows))


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
    work = bench.target.life
    driver, _ = bench.start(name, POD_RETENTION="0", **FAST_API)
    try:
        time.sleep(1.0)                       # let the pod cache list and start watching
        before = bench.target.server_stats()
        started = time.monotonic()
        submitted = pipeline(driver, submit_requests(bench.iwd, "life", jobs, work.image,
                                                     cmd=work.cmd, arguments=work.arguments))
        _check(submitted, "submits")
        open_ids = [t.result[3] for t in submitted]
        statuses = 0
        limit = 120 if bench.target.is_sim else 600      # a real cluster may pull the image
        while open_ids:
            time.sleep(poll_interval)
            polled = pipeline(driver, status_requests(open_ids))
            _check(polled, "status queries")
            statuses += len(polled)
            open_ids = [job_id for job_id, t in zip(open_ids, polled)
                        if t.result[3] != str(COMPLETED)]
            if time.monotonic() - started > limit:
                raise RuntimeError(f"{len(open_ids)} jobs did not complete within {limit} s")
        left = bench.wait_phase(name, lambda p: not p, 60 if bench.target.is_sim else 300)
        after = bench.target.server_stats()
        ended = time.monotonic()
    finally:
        driver.close()
    client = reqlog.counts(reqlog.between(bench.client_requests(name), started, ended))
    server = None if after is None or before is None else delta(after, before)
    requests = server if server is not None else client
    return {"jobs": jobs, "image": _describe(work), "status_queries": statuses,
            "seconds": ended - started, "pods_left": sum(left.values()),
            "requests": requests, "client_requests": client,
            "counted_by": "sim" if server is not None else "client",
            "requests_per_job": _per(sum(requests.values()), jobs)}


def _describe(work: Workload) -> str:
    return " ".join(p for p in (work.image, work.cmd if work.cmd != "/bin/true" else "",
                                work.arguments) if p)


# ------------------------------------------------------------------------------- the limit
def limit(bench: Bench, jobs: int, threads: int = WORKERS) -> dict[str, Any]:
    """A bare persistent client (benchmarks/limit.py, its own process) creates the pods kgahp
    would create for the scale phase's ads, with kgahp's worker concurrency; then they are
    deleted again so that kgahp meets the same server state."""
    from benchmarks.baseline import kgahp_pod

    name = "bench-limit"
    pod = kgahp_pod(bench.iwd, "limit_0.0", bench.target.sleep, name, bench.namespace)
    pod["metadata"].pop("name", None)
    pod["metadata"].pop("generateName", None)
    pod_file = os.path.join(bench.workdir, "limit-pod.json")
    with open(pod_file, "w") as fh:
        json.dump(pod, fh)
    argv = [sys.executable, "-m", "benchmarks.limit", "--kubeconfig", bench.kubeconfig,
            "--namespace", bench.namespace, "--pod-file", pod_file, "--count", str(jobs),
            "--threads", str(threads), "--prefix", name]
    if bench.target.context:
        argv += ["--context", bench.target.context]
    api0, server0 = bench.server_requests(), bench.server_cpu()
    load0 = os.getloadavg()[0]
    proc = subprocess.run(argv, cwd=str(Path(__file__).resolve().parents[1]),
                          capture_output=True, text=True, check=False, timeout=3600)
    api1, server1 = bench.server_requests(), bench.server_cpu()
    if proc.returncode != 0:
        raise RuntimeError(f"the limit client failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["errors"] or out["pods"] != jobs:
        raise RuntimeError(f"the limit client created {out['pods']} of {jobs} pods: "
                           f"{out['first_error']}")
    seconds = out["seconds"]
    server_cpu = _minus(server1, server0)
    bench.say(f"  limit: {jobs} pods in {seconds:.1f} s; deleting them")
    if not bench.target.delete_pods(bench.label(name)):
        raise RuntimeError("the limit phase's pods were not deleted within 300 s")
    return {"jobs": jobs, "threads": threads, "seconds": seconds,
            "per_second": jobs / seconds, "cpu_seconds": out["cpu_seconds"],
            "cpu_ms_per_submit": out["cpu_seconds"] / jobs * 1000,
            "cpu_utilisation": out["cpu_seconds"] / seconds,
            "api_requests_per_submit": out["requests"] / jobs, "retries": out["retries"],
            "server_requests_per_submit": _per_opt(_minus(api1, api0), jobs),
            "sim_cpu_ms_per_submit": _ms_per(server_cpu, jobs),
            "load_average_before": load0, "load_average_after": os.getloadavg()[0]}


def stages(bench: Bench, jobs: int) -> dict[str, Any]:
    """kgahp's submit steps timed one at a time in one thread, with the bare POST beside them
    (benchmarks/stages.py, its own process): the serial floor of a submit. Its pods are
    deleted again."""
    name = "bench-stages"
    work = bench.target.sleep
    knob_file = os.path.join(bench.workdir, "stages-knobs.json")
    with open(knob_file, "w") as fh:
        json.dump(bench.knobs(name, TRACKING_FINALIZER="false", **FAST_API), fh)
    argv = [sys.executable, "-m", "benchmarks.stages", "--knobs", knob_file,
            "--ad-dir", bench.iwd, "--count", str(jobs), "--image", work.image,
            "--cmd", work.cmd, "--arguments", work.arguments]
    proc = subprocess.run(argv, cwd=str(Path(__file__).resolve().parents[1]),
                          capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the stages run failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    bench.say(f"  stages: {jobs} submits one at a time, {out['submit_ms']:.3f} ms CPU each "
              f"(the bare POST alone {out['bare_post_ms']:.3f} ms); deleting their pods")
    if not bench.target.delete_pods(bench.label(name)):
        raise RuntimeError("the stages phase's pods were not deleted within 300 s")
    return out


# ------------------------------------------------------------------------------- scale
def checkpoints(jobs: int) -> list[int]:
    return [c for c in (100, 1000, 2500, 5000, 10000) if c < jobs] + [jobs]


def status_burst(bench: Bench, name: str, driver: BenchDriver, job_ids: Sequence[str],
                  count: int) -> dict[str, Any]:
    """`count` status queries, 50 in flight (the gridmanager's limit): latency, CPU, API use."""
    targets = evenly(job_ids, count)
    cpu0, api0 = procstat.sample(driver.pid).cpu_seconds, bench.server_requests()
    client0 = procstat.sample(os.getpid()).cpu_seconds
    t0 = time.monotonic()
    timed = pipeline(driver, status_requests(targets))
    t1 = time.monotonic()
    elapsed = t1 - t0
    cpu1, api1 = procstat.sample(driver.pid).cpu_seconds, bench.server_requests()
    client_busy = (procstat.sample(os.getpid()).cpu_seconds - client0) / elapsed
    _check(timed, "status queries", RUNNING)
    sent = _in(bench.client_requests(name), [(t0, t1)])
    api = _minus(api1, api0)
    return {**summary_ms([t.latency for t in timed]),
            "immediate": summary_ms([t.immediate for t in timed]),
            "per_second": len(timed) / elapsed,
            "cpu_ms_per_status": _per(cpu1 - cpu0, len(timed)) * 1000,
            "gahp_cpu_utilisation": (cpu1 - cpu0) / elapsed,
            "client_cpu_utilisation": client_busy,
            "api_requests_per_status": _per(api if api is not None else sent, len(timed)),
            "client_api_requests_per_status": _per(sent, len(timed))}


def status_isolated(bench: Bench, driver: BenchDriver, job_ids: Sequence[str], count: int,
                     gap: float = 0.0) -> dict[str, Any]:
    """One query at a time (nothing queued), optionally paced `gap` seconds apart. Also how
    busy the sim was meanwhile: on two cores its background work competes with kgahp."""
    timed: list[Timed] = []
    gahp0 = procstat.sample(driver.pid).cpu_seconds
    sim0, t0 = bench.server_cpu(), time.monotonic()
    for job_id in evenly(job_ids, count):
        timed += pipeline(driver, status_requests([job_id]), window=1)
        if gap:
            time.sleep(gap)
    sim_cpu = _minus(bench.server_cpu(), sim0)
    elapsed = time.monotonic() - t0
    gahp_cpu = procstat.sample(driver.pid).cpu_seconds - gahp0
    _check(timed, "status queries", RUNNING)
    return {**summary_ms([t.latency for t in timed]),
            "immediate": summary_ms([t.immediate for t in timed]),
            # kgahp's CPU beyond the queries' own (~0.1 ms each) is background work (reconcile,
            # garbage collection) that the queries wait behind for the GIL
            "gahp_cpu_utilisation": gahp_cpu / elapsed,
            "sim_cpu_utilisation": None if sim_cpu is None else sim_cpu / elapsed,
            "load_average": os.getloadavg()[0]}


def _running_at_least(count: int) -> Callable[[dict[str, int]], bool]:
    return lambda phases: phases.get("Running", 0) >= count


def scale(bench: Bench, jobs: int, paced_samples: int = 50) -> dict[str, Any]:
    """Submit in steps up to `jobs` tracked (running) jobs; at each step measure status latency,
    CPU and RSS; at the end SIGKILL kgahp and time the recovery of every status."""
    name = "bench-scale"
    work = bench.target.sleep
    driver, knobs = bench.start(name, **FAST_API)
    job_ids: list[str] = []
    steps: list[dict[str, Any]] = []
    windows: list[tuple[float, float]] = []
    submit_seconds = submit_cpu = driver_cpu = 0.0
    acks: list[float] = []    # each submit's wait for its `S`
    by_thread: dict[str, procstat.ThreadUse] = {}   # kgahp's CPU while submitting, per thread kind
    sim_cpu: Optional[float] = 0.0 if bench.target.is_sim else None
    # the server's count over the same windows as the client's (not what kgahp's start or a
    # watch's renewal sends between them)
    submit_api: Optional[float] = 0.0
    load0 = os.getloadavg()[0]
    try:
        time.sleep(1.0)
        for target in checkpoints(jobs):
            count = target - len(job_ids)
            bench.say(f"  submitting {count} jobs (to {target} tracked)")
            requests = submit_requests(bench.iwd, "scale", count, work.image,
                                       start=len(job_ids), cmd=work.cmd,
                                       arguments=work.arguments)
            gahp0, sim0 = procstat.sample(driver.pid), bench.server_cpu()
            threads0 = procstat.thread_usage(driver.pid)
            api0 = bench.server_requests()
            client0 = time.process_time()    # this process: microseconds, not clock ticks
            t0 = time.monotonic()
            timed = pipeline(driver, requests)
            t1 = time.monotonic()
            driver_cpu += time.process_time() - client0
            step_api = _minus(bench.server_requests(), api0)
            submit_api = None if submit_api is None or step_api is None \
                else submit_api + step_api
            seconds = t1 - t0
            windows.append((t0, t1))
            gahp_cpu = procstat.sample(driver.pid).cpu_seconds - gahp0.cpu_seconds
            for role, use in procstat.usage_between(
                    threads0, procstat.thread_usage(driver.pid)).items():
                was = by_thread.get(role, procstat.ThreadUse(0.0, 0, 0))
                by_thread[role] = procstat.ThreadUse(
                    was.cpu_seconds + use.cpu_seconds,
                    was.voluntary_switches + use.voluntary_switches,
                    max(was.threads, use.threads))
            step_sim_cpu = _minus(bench.server_cpu(), sim0)
            submit_seconds += seconds
            submit_cpu += gahp_cpu
            if sim_cpu is not None and step_sim_cpu is not None:
                sim_cpu += step_sim_cpu
            _check(timed, "submits")
            job_ids += [t.result[3] for t in timed]
            acks += [t.immediate for t in timed]
            submit_step = {"jobs": count, "per_second": count / seconds,
                           "gahp_cpu_ms_per_submit": gahp_cpu / count * 1000,
                           "sim_cpu_ms_per_submit": _ms_per(step_sim_cpu, count),
                           "load_average": os.getloadavg()[0]}
            wait = 300 if bench.target.is_sim else 900
            phases = bench.wait_phase(name, _running_at_least(target), wait)
            if phases.get("Running", 0) < target:
                raise RuntimeError(f"only {phases} of {target} pods running")
            time.sleep(1.0)                   # let the watch deliver the last updates
            bench.say(f"  measuring status at {target} tracked jobs")
            step: dict[str, Any] = {"tracked": target, "submit": submit_step}
            step["isolated"] = status_isolated(bench, driver, job_ids, min(200, target))
            step["burst"] = status_burst(bench, name, driver, job_ids, min(2000, target))
            mem = procstat.sample(driver.pid)
            step["rss_mb"] = mem.rss_bytes / 2**20
            step["peak_rss_mb"] = mem.peak_rss_bytes / 2**20
            steps.append(step)
        client_submit_api = _in(bench.client_requests(name), windows)
        bench.say(f"  paced status queries (5/s) at {len(job_ids)} tracked jobs")
        paced = status_isolated(bench, driver, job_ids, paced_samples, gap=0.2)
        bench.say(f"  SIGKILL kgahp at {len(job_ids)} tracked jobs; timing recovery")
        driver.kill()
        # the restarted kgahp paces itself as a site's would (default QPS and BURST)
        recovery = _recover(bench, name, {**knobs, **DEFAULT_API}, job_ids)
    finally:
        if driver.proc.poll() is None:
            driver.close()
    gahp_busy = submit_cpu / submit_seconds
    sim_busy = None if sim_cpu is None else sim_cpu / submit_seconds
    # the gridmanager sends a command only once the last one's `S` is in: one at a time,
    # however many run
    waiting_for_s = sum(acks) / max(submit_seconds, 1e-9)
    return {"jobs": len(job_ids), "steps": steps, "paced": paced,
            "submit": {"jobs": len(job_ids), "seconds": submit_seconds,
                       "per_second": len(job_ids) / submit_seconds,
                       "cpu_ms_per_submit": _per(submit_cpu, len(job_ids)) * 1000,
                       "gahp_cpu_utilisation": gahp_busy,
                       "immediate": summary_ms(acks),
                       "immediate_share": waiting_for_s,
                       # the gridmanager stand-in (this process) shares the cores too
                       "driver_cpu_ms_per_submit": _per(driver_cpu, len(job_ids)) * 1000,
                       "driver_cpu_utilisation": driver_cpu / submit_seconds,
                       "sim_cpu_utilisation": sim_busy,
                       "sim_cpu_ms_per_submit": None if sim_cpu is None
                       else _per(sim_cpu, len(job_ids)) * 1000,
                       "bottleneck": bottleneck(gahp_busy, sim_busy, waiting_for_s),
                       "one_core_capacity_per_second": len(job_ids) / max(submit_cpu, 1e-9),
                       "api_requests_per_submit": _per(
                           submit_api if submit_api is not None else client_submit_api,
                           len(job_ids)),
                       "client_api_requests_per_submit": _per(client_submit_api, len(job_ids)),
                       "by_thread": _per_submit_by_thread(by_thread, len(job_ids)),
                       "load_average_before": load0,
                       "load_average_after": os.getloadavg()[0]},
            "recovery": recovery}


def _per_submit_by_thread(by_thread: dict[str, procstat.ThreadUse],
                          submits: int) -> dict[str, dict[str, float]]:
    """Each kind of kgahp thread's CPU ms and voluntary switches per submit, busiest first;
    kinds that spent nothing are left out."""
    busiest = sorted(by_thread.items(), key=lambda item: -item[1].cpu_seconds)
    return {role: {"cpu_ms_per_submit": use.cpu_seconds / max(submits, 1) * 1000,
                   "switches_per_submit": use.voluntary_switches / max(submits, 1),
                   "threads": use.threads}
            for role, use in busiest if use.cpu_seconds > 0 or use.voluntary_switches > 0}


def _recover(bench: Bench, name: str, knobs: dict[str, str],
             job_ids: Sequence[str]) -> dict[str, Any]:
    """Start a new kgahp on the same state; time until every status is answered RUNNING."""
    api0 = bench.server_requests()
    client0 = procstat.sample(os.getpid()).cpu_seconds
    t0 = time.monotonic()
    driver = bench.launch(name, knobs)
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
        t1 = time.monotonic()
        seconds = t1 - t0
        mem = procstat.sample(driver.pid)
        client_cpu = procstat.sample(os.getpid()).cpu_seconds - client0
    finally:
        driver.close()
    api = _minus(bench.server_requests(), api0)
    client = _in(bench.client_requests(name), [(t0, t1)])
    return {"jobs": len(job_ids), "seconds": seconds, "banner_seconds": banner,
            "rounds": rounds, "wrong_answers": wrong, "unanswered": len(pending),
            "api_requests": int(api) if api is not None else client,
            "client_api_requests": client,
            "rss_mb_after": mem.rss_bytes / 2**20, "gahp_cpu_seconds": mem.cpu_seconds,
            "client_cpu_seconds": client_cpu}


# ------------------------------------------------------------------------------- rate limit
def rate_limit(bench: Bench, jobs: int, qps: int = 20, burst: int = 40) -> dict[str, Any]:
    """With the default pacing knobs, submit faster than allowed; every request kgahp sent is
    timed from its own request log (so this works on any cluster)."""
    name = "bench-qps"
    work = bench.target.sleep
    api0 = bench.server_requests()
    t0 = time.monotonic()
    driver, _ = bench.start(name, QPS=str(qps), BURST=str(burst))
    try:
        timed = pipeline(driver, submit_requests(bench.iwd, "qps", jobs, work.image,
                                                 cmd=work.cmd, arguments=work.arguments))
        _check(timed, "submits")
    finally:
        driver.close()
    api = _minus(bench.server_requests(), api0)
    sent = [r for r in bench.client_requests(name) if r.sent >= t0]
    times = [r.sent for r in sent]
    counted = [(t, n + 1) for n, t in enumerate(times)]
    return {"qps": qps, "burst": burst, "jobs": jobs, "requests": len(sent),
            "server_requests": None if api is None else int(api),
            "seconds": (times[-1] - times[0]) if len(times) > 1 else 0.0,
            "achieved_rate": steady_rate(counted, burst),
            "max_in_1s": reqlog.max_in_window(times, 1.0),
            "allowed_in_1s": burst + qps}


def retry_after(bench: Bench, jobs: int, seconds: float = 4.0, retry_seconds: int = 2,
                qps: int = 20, burst: int = 40) -> dict[str, Any]:
    """The server answers every pod create with 429 and Retry-After for `seconds`: kgahp (default
    QPS and BURST) must wait at least that long before a thread sends again, so its request
    rate falls, and every submit still succeeds once the server accepts again. Needs the
    simulator's fault injection; elsewhere it is reported as not measured."""
    name = "bench-429"
    work = bench.target.sleep
    path = f"/api/v1/namespaces/{bench.namespace}/pods$"
    driver, _ = bench.start(name, QPS=str(qps), BURST=str(burst))
    try:
        time.sleep(1.0)
        if not bench.target.inject_429("POST", path, retry_seconds):
            return {"measured": False, "why": "needs the simulator's fault injection"}
        fault_on = time.monotonic()
        fault_off = fault_on + seconds
        timed: list[Timed] = []
        try:
            requests = submit_requests(bench.iwd, "r429", jobs, work.image, cmd=work.cmd,
                                       arguments=work.arguments)
            clear = threading.Timer(seconds, bench.target.clear_faults)
            clear.start()
            try:
                timed = pipeline(driver, requests)
            finally:
                clear.join()
        finally:
            bench.target.clear_faults()
        done = time.monotonic()
        _check(timed, "submits")
    finally:
        driver.close()
    creates = [r for r in bench.client_requests(name)
               if r.method == "POST" and r.key == "create/pods/" and r.sent >= fault_on]
    answered_429 = [r for r in creates if r.status == 429]
    during = [r for r in creates if r.sent <= fault_off]
    waits = reqlog.waits_after(creates, 429)
    return {"measured": True, "jobs": jobs, "qps": qps, "burst": burst,
            "fault_seconds": seconds, "retry_after": retry_seconds,
            "answered_429": len(answered_429), "creates_during": len(during),
            "creates_per_second_during": len(during) / seconds,
            "seconds_after_fault": max(0.0, done - fault_off),
            "workers": bench.workers,
            "allowed_per_second_during": bench.workers / retry_seconds,
            "min_wait_after_429": min(waits) if waits else None,
            "waits_counted": len(waits),
            "submits_ok": len(timed) - len(failures(timed)),
            "seconds": done - fault_on}
