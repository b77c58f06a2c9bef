"""Scale tiers: kgahp tracking 1,000 to 100,000 running jobs spread over several namespaces.

For each tier: RSS of the kgahp process, status latency (p50/p99, none of them an API request),
recovery after SIGKILL until every job is answered right (and the API requests it took: the
paged lists and one watch per namespace), and how fast kgahp follows when 10,000 of its pods
change state within a minute.

Loading the tier. On the simulator (the default) each tier gets a fresh simulated cluster, and
its pods are **seeded**: kgahp renders one pod per namespace for a marker job, and each job's
pod is that text with the marker replaced by the job's own directory and name (checked against
a full render of sample jobs), created through the simulator's own create path (admission,
validation, defaulting, store, watch events) minus HTTP, with spec.nodeName set, so the sim's
kubelet starts each one. kgahp's durable store gets the record its submit would have written
(attempt, ad, namespace, seen running). Then kgahp starts on that state: that start is a
recovery from a store and a cluster it did not see before the crash. Submitting 100,000 jobs
through the protocol would take 10-20 minutes of the 2 cores and measure the submit path, which
the stepped `scale` phase measures already.
Against a cluster named by --kubeconfig nothing can be seeded: the jobs are submitted through
the protocol (50 in flight, QPS 1000) and the event part is not measured (it needs the
simulator to end containers at chosen times).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional

from benchmarks import procstat, reqlog
from benchmarks.gahpclient import BenchDriver, job_ad, pipeline, status_requests
from benchmarks.measure import evenly, summary_ms
from benchmarks.phases import DEFAULT_API, FAST_API, Bench, status_burst, status_isolated
from benchmarks.simproc import SimProcess
from benchmarks.target import ClusterTarget, SimTarget
from kgahp.model import COMPLETED, RUNNING

NAME = "bench-tier"
JOBS_PER_NAMESPACE = 10_000     # at least 4 namespaces; Kubernetes: a few thousand pods each
PODS_PER_NODE = 100             # the sim's nodes allow 110
MARKER_DIR = "tier_999999999.0"
RECOVERY_SAMPLE = 1000          # jobs polled while kgahp recovers (every namespace in it)
LIST_PAGE = 500                 # kgahp's list page size (kgahp/kube/api.py)
# Deletes of finished pods stay out of the measured window (the default is 300 s).
TIER_KNOBS = {"POD_RETENTION": "3600"}


def namespace_names(jobs: int, wanted: int = 0) -> list[str]:
    count = wanted or max(4, math.ceil(jobs / JOBS_PER_NAMESPACE))
    return [f"kgahp-bench-t{i}" for i in range(count)]


def job_dirs(jobs: int) -> list[str]:
    return [f"tier_{i}.0" for i in range(jobs)]


def _namespace_of(index: int, namespaces: Sequence[str]) -> str:
    return namespaces[index % len(namespaces)]


def _knobs(namespaces: Sequence[str]) -> dict[str, str]:
    return {"NAMESPACE": namespaces[0], "ALLOWED_NAMESPACES": ",".join(namespaces[1:]),
            **TIER_KNOBS}


def _ad(bench: Bench, job_dir: str, namespace: str) -> str:
    work = bench.target.sleep
    return job_ad(bench.iwd, job_dir, work.image, work.cmd, work.arguments,
                  namespace=namespace)


# ------------------------------------------------------------------------------- loading
class Seeder:
    """Pods and store records as kgahp's submits would have left them (see the docstring)."""

    def __init__(self, bench: Bench, namespaces: Sequence[str]) -> None:
        from kgahp.config import settings_from_mapping
        from kgahp.podspec import names
        from kgahp.podspec.templates import load_templates

        self.bench = bench
        self.namespaces = list(namespaces)
        knobs = {k: v for k, v in bench.knobs(NAME, **_knobs(namespaces)).items()
                 if k not in ("KUBECONFIG", "LOG", "DEBUG")}
        self.settings = settings_from_mapping(knobs)
        self.templates = load_templates(self.settings.pod)
        self.prefix = self.settings.pod.pod_name_prefix
        self.names = names
        self.marker_name = names.job_base_name(MARKER_DIR, self.prefix)

    def job_name(self, job_dir: str) -> str:
        return str(self.names.job_base_name(job_dir, self.prefix))

    def render(self, job_dir: str, namespace: str) -> dict:
        from kgahp.render import render_text

        return render_text(_ad(self.bench, job_dir, namespace), self.settings, self.templates)

    def pod_texts(self) -> dict[str, str]:
        return {ns: json.dumps(self.render(MARKER_DIR, ns)) for ns in self.namespaces}

    def check_substitution(self, texts: dict[str, str], samples: Sequence[int]) -> None:
        """The seeded pod of a job is exactly the pod kgahp renders for it."""
        for i in samples:
            job_dir, ns = f"tier_{i}.0", _namespace_of(i, self.namespaces)
            seeded = json.loads(texts[ns].replace(MARKER_DIR, job_dir)
                                .replace(self.marker_name, self.job_name(job_dir)))
            if seeded != self.render(job_dir, ns):
                raise RuntimeError(f"a seeded pod differs from kgahp's render of {job_dir}")

    def seed_pods(self, sim: SimProcess, jobs: int, chunk: int = 10_000) -> float:
        texts = self.pod_texts()
        self.check_substitution(texts, sorted({0, 1, jobs // 2, jobs - 1}))
        t0 = time.monotonic()
        dirs = job_dirs(jobs)
        for start in range(0, jobs, chunk):
            rows = [(_namespace_of(i, self.namespaces), dirs[i], self.job_name(dirs[i]))
                    for i in range(start, min(jobs, start + chunk))]
            sim.seed_pods(texts, (MARKER_DIR, self.marker_name), rows)
            self.bench.say(f"    seeded {start + len(rows):,} pods "
                           f"({time.monotonic() - t0:.0f} s)")
        return time.monotonic() - t0

    def write_store(self, jobs: int) -> tuple[float, str]:
        """kgahp's store as its submits would have left it: attempt 0, its ad, seen running."""
        from kgahp.store import JobRecord, JobStore

        path = os.path.join(self.settings.state_dir,
                            f"jobs-{self.names.label_value(self.settings.instance)}.sqlite")
        t0 = time.monotonic()
        store = JobStore(path)
        submitted = time.time() - 600
        try:
            for i, job_dir in enumerate(job_dirs(jobs)):
                ns = _namespace_of(i, self.namespaces)
                store.import_record(JobRecord(
                    job=self.job_name(job_dir), namespace=ns, attempt=0,
                    ad=_ad(self.bench, job_dir, ns), submitted_at=submitted, started=True))
        finally:
            store.close()
        return time.monotonic() - t0, path


def _running(bench: Bench, namespaces: Sequence[str]) -> int:
    return sum(bench.target.phases(bench.label(NAME), ns).get("Running", 0)
               for ns in namespaces)


def _wait_running(bench: Bench, namespaces: Sequence[str], want: int, timeout: float) -> float:
    t0 = time.monotonic()
    while True:
        running = _running(bench, namespaces)
        if running >= want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"only {running} of {want} pods running after {timeout:.0f} s")
        time.sleep(1.0 if bench.target.is_sim else 3.0)


# ------------------------------------------------------------------------------- answers
def _job_ids(jobs: int, namespaces: Sequence[str], seeder: Seeder) -> list[str]:
    return [f"kubernetes/{_namespace_of(i, namespaces)}/{seeder.job_name(d)}"
            for i, d in enumerate(job_dirs(jobs))]


def _wrong(job_ids: Sequence[str], timed: Sequence[Any], want: int) -> list[str]:
    return [j for j, t in zip(job_ids, timed)
            if t.result[1] != "0" or t.result[3] != str(want)]


def answer_all(driver: BenchDriver, job_ids: Sequence[str], t0: float,
               sample_size: int = RECOVERY_SAMPLE, timeout: float = 900.0) -> dict[str, Any]:
    """Poll an evenly spread sample until each answers RUNNING (kgahp has its cache back),
    then query every job (50 in flight) and again those not yet right; times from t0."""
    sample = evenly(job_ids, sample_size)
    wrong_sample = 0
    while True:
        timed = pipeline(driver, status_requests(sample), timeout=timeout)
        bad = _wrong(sample, timed, RUNNING)
        if not bad:
            break
        wrong_sample += len(bad)
        sample = bad
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{len(bad)} sampled jobs still not RUNNING after {timeout} s")
        time.sleep(0.05)
    sample_right = time.monotonic() - t0
    pending, rounds, wrong = list(job_ids), 0, 0
    pass_start = time.monotonic()
    while pending and time.monotonic() - t0 < timeout:
        rounds += 1
        timed = pipeline(driver, status_requests(pending), timeout=timeout)
        still = _wrong(pending, timed, RUNNING)
        wrong += len(still)
        pending = still
    return {"sample": min(sample_size, len(job_ids)), "sample_right_seconds": sample_right,
            "wrong_in_sample": wrong_sample, "every_job_right_seconds": time.monotonic() - t0,
            "full_pass_seconds": time.monotonic() - pass_start, "rounds": rounds,
            "wrong_answers": wrong, "unanswered": len(pending)}


def _requests_by_key(bench: Bench, before: Optional[dict[str, int]],
                     requests: Sequence[reqlog.Request]) -> dict[str, int]:
    after = bench.target.server_stats()
    if before is not None and after is not None:
        from benchmarks.measure import delta

        return delta(after, before)
    return reqlog.counts(requests)


def _recovery(bench: Bench, knobs: dict[str, str], job_ids: Sequence[str],
              namespaces: Sequence[str], jobs_per_ns: dict[str, int]
              ) -> tuple[BenchDriver, dict[str, Any]]:
    """Start kgahp on the state; time until every job answers right; count its requests."""
    before = bench.target.server_stats()
    t0 = time.monotonic()
    driver = bench.launch(NAME, knobs)
    try:
        banner = time.monotonic() - t0
        answers = answer_all(driver, job_ids, t0)
    except BaseException:
        driver.close()
        raise
    t1 = time.monotonic()
    sample = procstat.sample(driver.pid)
    sent = [r for r in bench.client_requests(NAME) if t0 <= r.sent <= t1]
    by_key = _requests_by_key(bench, before, sent)
    lists = [r for r in sent if r.key == "list/pods/"]
    expected_pages = sum(math.ceil(n / LIST_PAGE) for n in jobs_per_ns.values() if n)
    return driver, {
        **answers, "jobs": len(job_ids), "banner_seconds": banner,
        "api_requests": sum(by_key.values()), "api_requests_by_kind": by_key,
        "client_api_requests": len(sent),
        "list_pages": by_key.get("list/pods/", 0), "watches": by_key.get("watch/pods/", 0),
        "expected_requests": expected_pages + len(namespaces),
        "lists_paged": bool(lists) and all("limit=" in r.url for r in lists),
        "continue_pages": sum(1 for r in lists if "continue=" in r.url),
        "gahp_cpu_seconds": sample.cpu_seconds, "rss_mb": sample.rss_bytes / 2**20,
        "peak_rss_mb": sample.peak_rss_bytes / 2**20,
        "load_average": os.getloadavg()[0]}


# ------------------------------------------------------------------------------- events
def events(bench: Bench, sim: SimProcess, driver: BenchDriver, job_ids: Sequence[str],
           count: int, window: float, timeout: float = 600.0) -> dict[str, Any]:
    """`count` pods (evenly spread) end within `window` seconds; each ended job is queried until
    it answers COMPLETED. Lag = first COMPLETED answer seen minus the time its pod ended."""
    ids = evenly(job_ids, count)
    pods = []
    for job_id in ids:
        _, ns, job = job_id.split("/")
        pods.append((ns, f"{job}-0"))
    gahp0, sim0 = procstat.sample(driver.pid).cpu_seconds, bench.server_cpu()
    before = bench.target.server_stats()
    load0 = os.getloadavg()[0]
    sim.finish_pods(pods, window)
    seen: dict[int, float] = {}
    queries, t0 = 0, time.monotonic()
    progress: dict[str, Any] = {}
    while len(seen) < len(ids):
        progress = sim.finish_progress()
        ended = int(progress.get("done", 0))
        ask = [i for i in range(ended) if i not in seen]
        if ask:
            timed = pipeline(driver, status_requests([ids[i] for i in ask]), timeout=timeout)
            queries += len(timed)
            now = time.monotonic()
            for i, t in zip(ask, timed):
                if t.result[1] == "0" and t.result[3] == str(COMPLETED):
                    seen[i] = t.done if t.done else now
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{len(ids) - len(seen)} of {len(ids)} ended jobs not answered "
                               f"COMPLETED after {timeout:.0f} s")
        time.sleep(0.5)
    progress = sim.finish_progress()
    first = float(progress["first"])
    last_seen = max(seen.values())
    gahp_cpu = procstat.sample(driver.pid).cpu_seconds - gahp0
    sim_cpu = bench.server_cpu()
    # pod i ended at about first + window * i / count (the finisher's schedule, 20 ms steps)
    lags = [seen[i] - (first + window * i / len(ids)) for i in range(len(ids))]
    by_key = _requests_by_key(bench, before, [])
    return {"pods": len(ids), "window_seconds": window,
            "changes_per_second_offered": len(ids) / window,
            "last_change_after": float(progress["last"]) - first,
            "all_completed_after": last_seen - first,
            "throughput_per_second": len(ids) / max(last_seen - first, 1e-9),
            "lag": summary_ms([max(0.0, x) for x in lags]),
            "status_queries": queries,
            "gahp_cpu_seconds": gahp_cpu, "gahp_cpu_ms_per_event": gahp_cpu / len(ids) * 1000,
            "sim_cpu_seconds": None if sim_cpu is None or sim0 is None else sim_cpu - sim0,
            "api_requests": sum(by_key.values()), "api_requests_by_kind": by_key,
            "rss_mb_after": procstat.sample(driver.pid).rss_bytes / 2**20,
            "load_average_before": load0, "load_average_after": os.getloadavg()[0]}


# ------------------------------------------------------------------------------- one tier
def tier(bench: Bench, jobs: int, namespaces: Sequence[str], event_count: int,
         event_window: float) -> dict[str, Any]:
    say = bench.say
    seeder = Seeder(bench, namespaces)
    jobs_per_ns = Counter(_namespace_of(i, namespaces) for i in range(jobs))
    job_ids = _job_ids(jobs, namespaces, seeder)
    load0 = os.getloadavg()[0]
    out: dict[str, Any] = {"tracked": jobs, "namespaces": len(namespaces),
                           "jobs_per_namespace": max(jobs_per_ns.values()),
                           "load_average_at_start": load0}
    knobs = bench.knobs(NAME, **_knobs(namespaces), **DEFAULT_API)
    sim = getattr(bench.target, "sim", None)
    if isinstance(sim, SimProcess):
        out["loaded_by"] = "seeded (simulator store, kgahp's rendered pods and store records)"
        say(f"  seeding {jobs:,} pods over {len(namespaces)} namespaces")
        out["seed_seconds"] = seeder.seed_pods(sim, jobs)
        out["wait_running_seconds"] = _wait_running(bench, namespaces, jobs, 1800)
        out["store_seconds"], _ = seeder.write_store(jobs)
        say(f"  starting kgahp on {jobs:,} jobs it did not see before")
        first, out["first_start"] = _recovery(bench, knobs, job_ids, namespaces, jobs_per_ns)
    else:
        out["loaded_by"] = "submitted through the protocol (50 in flight, QPS 1000)"
        bench.target.create_namespaces(list(namespaces))
        first = bench.launch(NAME, {**knobs, **FAST_API})
        t0 = time.monotonic()
        requests = [("BLAH_JOB_SUBMIT", _ad(bench, d, _namespace_of(i, namespaces)))
                    for i, d in enumerate(job_dirs(jobs))]
        timed = pipeline(first, requests, timeout=3600)
        bad = [t.result for t in timed if t.result[1] != "0"]
        if bad:
            first.close()
            raise RuntimeError(f"{len(bad)} of {jobs} submits failed, e.g. {bad[0][:4]}")
        out["submit_seconds"] = time.monotonic() - t0
        out["wait_running_seconds"] = _wait_running(bench, namespaces, jobs, 3600)
    try:
        say(f"  status at {jobs:,} tracked jobs")
        time.sleep(1.0)
        out["isolated"] = status_isolated(bench, first, job_ids, min(500, jobs))
        out["burst"] = status_burst(bench, NAME, first, job_ids, min(5000, jobs))
        mem = procstat.sample(first.pid)
        out["rss_mb"], out["peak_rss_mb"] = mem.rss_bytes / 2**20, mem.peak_rss_bytes / 2**20
        say(f"  SIGKILL kgahp; recovery of {jobs:,} jobs")
        first.kill()
        second, out["recovery"] = _recovery(bench, knobs, job_ids, namespaces, jobs_per_ns)
    finally:
        if first.proc.poll() is None:
            first.close()
    try:
        if isinstance(sim, SimProcess) and event_count > 0:
            count = min(event_count, jobs)
            say(f"  {count:,} pods end within {event_window:.0f} s")
            out["events"] = events(bench, sim, second, job_ids, count, event_window)
        else:
            out["events"] = {"measured": False,
                             "why": "needs the simulator to end containers at chosen times"}
        out["rss_mb_end"] = procstat.sample(second.pid).rss_bytes / 2**20
        out["peak_rss_mb_end"] = procstat.sample(second.pid).peak_rss_bytes / 2**20
    finally:
        second.close()
    out["load_average_at_end"] = os.getloadavg()[0]
    return out


def run_tiers(bench: Bench, tiers: Sequence[int], namespaces: int = 0, events: int = 10_000,
              events_window: float = 60.0) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for jobs in tiers:
        names = namespace_names(jobs, namespaces)
        t0 = time.monotonic()
        bench.say(f" tier {jobs:,} jobs in {len(names)} namespaces")
        if bench.target.is_sim:
            nodes = max(10, math.ceil(jobs / PODS_PER_NODE))
            workdir = os.path.join(bench.workdir, f"tier-{jobs}")
            with SimProcess(os.path.join(workdir, "sim"), nodes=nodes) as sim:
                sim.create_namespaces(names)
                kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
                target = SimTarget(sim, kubeconfig, names[0])
                tier_bench = Bench(target, workdir, bench.say, bench.log_level, bench.argv)
                row = tier(tier_bench, jobs, names, events, events_window)
                row["sim_nodes"] = nodes
        else:
            try:
                row = tier(bench, jobs, names, 0, events_window)
            finally:
                assert isinstance(bench.target, ClusterTarget)
                for ns in names:
                    bench.target.delete_pods(bench.label(NAME), timeout=1800, namespace=ns)
        row["seconds"] = time.monotonic() - t0
        results.append(row)
    return {"tiers": results}


# ------------------------------------------------------------------------------- report
def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table_lines(data: dict[str, Any]) -> list[str]:
    rows = data.get("tiers") or []
    lines = ["scale tiers (each: its own simulated cluster, jobs spread over namespaces; "
             "restarts with QPS=20 BURST=40):",
             f"{'tracked':>8} {'ns':>3} {'RSS MB':>7} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'api/st':>6} {'recov s':>8} {'all s':>7} {'req':>5} {'expect':>6} "
             f"{'paged':>5} {'ev/s':>6} {'lag p99 s':>9} {'cpu ms/ev':>9} {'load':>5}"]
    for r in rows:
        rec, ev = r["recovery"], r.get("events") or {}
        measured = ev.get("measured", True) and "pods" in ev
        lines.append(
            f"{r['tracked']:>8,} {r['namespaces']:>3} {_f(r['rss_mb'], 0):>7} "
            f"{_f(r['isolated']['p50_ms'], 3):>7} {_f(r['isolated']['p99_ms'], 3):>7} "
            f"{_f(r['burst']['api_requests_per_status'], 2):>6} "
            f"{_f(rec['sample_right_seconds']):>8} {_f(rec['every_job_right_seconds']):>7} "
            f"{rec['api_requests']:>5} {rec['expected_requests']:>6} "
            f"{'yes' if rec['lists_paged'] else 'NO':>5} "
            f"{_f(ev.get('throughput_per_second'), 0) if measured else 'n/a':>6} "
            f"{_f(ev['lag']['p99_ms'] / 1000, 2) if measured else 'n/a':>9} "
            f"{_f(ev.get('gahp_cpu_ms_per_event'), 2) if measured else 'n/a':>9} "
            f"{_f(r['load_average_at_start'], 1):>5}")
    lines.append("recov s: kgahp restarted after SIGKILL until a sample of 1,000 jobs (all "
                 "namespaces) answered right; all s: until every job had (one full pass of "
                 "status queries, 50 in flight, included); req: its API requests (expect: list "
                 "pages of 500 + one watch per namespace); ev/s: pods ended within the window "
                 "over the time until kgahp answered the last one COMPLETED")
    return lines


def chart(results: dict[str, Any], path: str) -> str:
    """Status latency (p50/p99) and kgahp's RSS against tracked jobs, from one run's tiers."""
    return chart_runs([results], path)


def _series(runs: Sequence[dict[str, Any]], get: Any) -> tuple[list[int], list[float],
                                                                 list[list[float]]]:
    """Tracked jobs, the median over the runs and its distance to the lowest and highest."""
    by_tier: dict[int, list[float]] = {}
    for run in runs:
        for row in run["tiers"]["tiers"]:
            by_tier.setdefault(row["tracked"], []).append(float(get(row)))
    tracked = sorted(by_tier)
    mid = [statistics.median(by_tier[t]) for t in tracked]
    err = [[m - min(by_tier[t]) for t, m in zip(tracked, mid)],
           [max(by_tier[t]) - m for t, m in zip(tracked, mid)]]
    return tracked, mid, err


def chart_runs(runs: Sequence[dict[str, Any]], path: str) -> str:
    """The chart of one or more runs: medians, with the lowest and highest as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    several = len(runs) > 1
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.4))
    for label, get, style in (
            ("p50, one at a time", lambda r: r["isolated"]["p50_ms"], "o-"),
            ("p99, one at a time", lambda r: r["isolated"]["p99_ms"], "o-"),
            ("p50, 50 in flight", lambda r: r["burst"]["p50_ms"], "s--"),
            ("p99, 50 in flight", lambda r: r["burst"]["p99_ms"], "s--")):
        tracked, mid, err = _series(runs, get)
        lat.errorbar(tracked, mid, yerr=err if several else None, fmt=style, capsize=3,
                     label=label)
    lat.plot([10_000, 100_000], [1.0, 2.0], "kx", ms=8, label="targets p99 (1 ms, 2 ms)")
    lat.set_xscale("log")
    lat.set_yscale("log")
    lat.set_xlabel("tracked jobs")
    lat.set_ylabel("status latency, request to result read (ms)")
    lat.set_title("status (0 API requests each)", fontsize=10)
    lat.legend(fontsize=8)
    lat.grid(True, which="both", alpha=0.3)
    for label, get, style in (
            ("RSS after status", lambda r: r["rss_mb"], "o-"),
            ("peak RSS, recovered kgahp after the pod changes",
             lambda r: r.get("peak_rss_mb_end", math.nan), "s--")):
        tracked, mid, err = _series(runs, get)
        mem.errorbar(tracked, mid, yerr=err if several else None, fmt=style, capsize=3,
                     label=label)
    mem.plot([10_000, 100_000], [150, 600], "kx", ms=8, label="targets (150, 600 MB)")
    mem.set_xscale("log")
    mem.set_xlabel("tracked jobs")
    mem.set_ylabel("kgahp resident memory (MB)")
    mem.set_title("memory", fontsize=10)
    mem.set_ylim(bottom=0)
    mem.legend(fontsize=8)
    mem.grid(True, which="both", alpha=0.3)
    for axes in (lat, mem):
        axes.set_xticks(tracked)
        axes.set_xticklabels([f"{t:,}" for t in tracked], fontsize=8)
    mem.minorticks_off()
    meta = runs[-1]["meta"]
    what = f"median of {len(runs)} runs (bars: lowest, highest)" if several else meta["date"]
    fig.suptitle(f"kgahp against tracked jobs - {meta['cores']} cores ({meta['cpu_model']}), "
                 f"{what}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    if path.endswith(".png"):
        fig.savefig(path[:-4] + ".svg")
    plt.close(fig)
    return path
