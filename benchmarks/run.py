"""`python benchmarks/run.py [--jobs N] [--quick] [--json] [--kubeconfig PATH [--context C]]`:
how cheap kgahp is, reproducibly, and how close it comes to the limit.

Drives the real kgahp executable over the GAHP protocol exactly as the gridmanager does (pipes,
async mode, 50 requests in flight) against the simulated cluster running in its own process
(scripted containers, no payloads) or, with --kubeconfig, any cluster (plain images: --image
for jobs that run until removed, --life-image for two-second jobs). In the same run a bare
persistent client creates the same pods with kgahp's concurrency (the limit), and the
prototype's one-kubectl-per-operation approach runs on the same cluster.
Writes benchmarks/out/results.json and benchmarks/out/status_rss.png.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:          # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks import phases, procstat, report  # noqa: E402
from benchmarks.simproc import SimProcess  # noqa: E402
from benchmarks.target import (  # noqa: E402
    DEFAULT_IMAGE,
    DEFAULT_IMAGE_COMMAND,
    DEFAULT_LIFE_COMMAND,
    DEFAULT_LIFE_IMAGE,
    ClusterTarget,
    SimTarget,
    Workload,
)

OUT = REPO / "benchmarks" / "out"
# Phases in the order they run; `--phases` picks some.
PHASES = ("life", "limit", "stages", "scale", "rate", "429", "baseline", "tiers")
DEFAULT_TIERS = [1000, 10_000, 30_000, 100_000]
QUICK_TIERS = [1000]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="tracked jobs (default 10000)")
    parser.add_argument("--quick", action="store_true",
                        help="500 tracked jobs and smaller side phases (under a minute)")
    parser.add_argument("--json", action="store_true", help="print the JSON on stdout too")
    parser.add_argument("--out", default=str(OUT), help="output directory")
    parser.add_argument("--baseline-jobs", type=int, default=20,
                        help="jobs the kubectl baseline is sampled on (0 = skip)")
    parser.add_argument("--life-jobs", type=int, default=0,
                        help="jobs run to completion for requests per job life (default 200)")
    parser.add_argument("--rate-jobs", type=int, default=0,
                        help="submits of the QPS=20 BURST=40 phase (default 200)")
    parser.add_argument("--paced-samples", type=int, default=50,
                        help="status queries sent 0.2 s apart (the gridmanager's 5/s)")
    parser.add_argument("--limit-jobs", type=int, default=-1,
                        help="pods the bare client (the limit) creates (default: --jobs; 0 = skip)")
    parser.add_argument("--stages-jobs", type=int, default=-1,
                        help="submits timed step by step in one thread (default: --jobs, at "
                             "most 300; 0 = skip)")
    parser.add_argument("--workers", type=int, default=phases.WORKERS,
                        help="KGAHP_WORKERS of every kgahp started (default 50, kgahp's own)")
    parser.add_argument("--limit-threads", type=int, default=0,
                        help="threads of the bare client (default: --workers, the same "
                             "concurrency as kgahp's)")
    parser.add_argument("--retry-jobs", type=int, default=0,
                        help="submits of the 429 Retry-After phase (default 100; sim only)")
    parser.add_argument("--kubeconfig", default="",
                        help="run against this cluster instead of the built-in simulator")
    parser.add_argument("--context", default="", help="kubeconfig context (with --kubeconfig)")
    parser.add_argument("--sim-tls", action="store_true",
                        help="the simulator serves https, as a real API server does (needs the "
                        "openssl command)")
    parser.add_argument("--namespace", default="default",
                        help="namespace of every benchmark pod (default: default)")
    parser.add_argument("--image", default=DEFAULT_IMAGE,
                        help=f"image of jobs that run until removed, on a cluster given by "
                             f"--kubeconfig (default {DEFAULT_IMAGE})")
    parser.add_argument("--image-command", default=DEFAULT_IMAGE_COMMAND,
                        help=f"its command (default {DEFAULT_IMAGE_COMMAND})")
    parser.add_argument("--life-image", default=DEFAULT_LIFE_IMAGE,
                        help=f"image of the job-life phase's jobs (default {DEFAULT_LIFE_IMAGE})")
    parser.add_argument("--life-command", default=DEFAULT_LIFE_COMMAND,
                        help=f"their command (default {DEFAULT_LIFE_COMMAND!r})")
    parser.add_argument("--log-level", default="INFO",
                        help="KGAHP_DEBUG of the benchmarked kgahp (the default is INFO)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma list of phases to run (default all: {','.join(PHASES)})")
    parser.add_argument("--scale", default="",
                        help="tracked-job tiers of the scale-tiers phase, comma separated "
                             f"(default {','.join(map(str, DEFAULT_TIERS))}; --quick: "
                             f"{','.join(map(str, QUICK_TIERS))}); 0 = skip the phase")
    parser.add_argument("--namespaces", type=int, default=0,
                        help="namespaces the scale tiers spread their jobs over (default: one "
                             "per 12,500 jobs, at least 4)")
    parser.add_argument("--events", type=int, default=-1,
                        help="pods of each tier that change state within --events-window "
                             "seconds (default 10000, --quick 500; at most the tier)")
    parser.add_argument("--events-window", type=float, default=0.0,
                        help="seconds over which those pods change state (default 60, "
                             "--quick 5)")
    parser.add_argument("--kgahp-python", default=sys.executable,
                        help="the Python that runs the benchmarked kgahp (another checkout's "
                             "venv, to compare versions on the same simulator and driver)")
    parser.add_argument("--workload", choices=("pod", "job"), default="pod",
                        help="what one job attempt is (KGAHP_WORKLOAD): a pod or a batch/v1 Job")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in args.phases if p not in PHASES]
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    try:
        tiers = [int(t) for t in args.scale.split(",") if t.strip()] if args.scale else (
            QUICK_TIERS if args.quick else DEFAULT_TIERS)
    except ValueError:
        parser.error(f"--scale wants tracked-job counts separated by commas, not {args.scale!r}")
    if any(t < 0 for t in tiers):
        parser.error("--scale: tiers must not be negative")
    args.scale = sorted({t for t in tiers if t > 0})
    if not args.scale and "tiers" in args.phases:
        args.phases.remove("tiers")
    if args.events < 0:
        args.events = 500 if args.quick else 10_000
    args.events_window = args.events_window or (5.0 if args.quick else 60.0)
    if args.quick:
        args.jobs = min(args.jobs, 500)
        args.life_jobs = args.life_jobs or 50
        args.rate_jobs = args.rate_jobs or 100
        args.baseline_jobs = min(args.baseline_jobs, 10)
        args.retry_jobs = args.retry_jobs or 60
    args.life_jobs = args.life_jobs or 200
    args.rate_jobs = args.rate_jobs or 200
    args.retry_jobs = args.retry_jobs or 100
    if args.limit_jobs < 0:
        args.limit_jobs = args.jobs
    if args.stages_jobs < 0:
        args.stages_jobs = min(args.jobs, 300)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    args.limit_threads = args.limit_threads or args.workers
    if args.context and not args.kubeconfig:
        parser.error("--context needs --kubeconfig")
    if args.kubeconfig and not os.path.exists(os.path.expanduser(args.kubeconfig)):
        parser.error(f"--kubeconfig {args.kubeconfig} does not exist")
    return args


BENCH_INSTANCES = ("bench-life", "bench-limit", "bench-scale", "bench-qps", "bench-429",
                   "bench-baseline", "bench-tier")


def _cleanup(target: ClusterTarget, say: Any) -> None:
    """Delete every pod an earlier or this run left on a cluster that outlives the run."""
    from kgahp.podspec import names

    label = f"{names.LABEL_INSTANCE} in ({','.join(BENCH_INSTANCES)})"
    if target.phases(label):
        say(f"deleting leftover benchmark pods ({label}) in namespace {target.namespace}")
        if not target.delete_pods(label, timeout=600):
            say("warning: some benchmark pods are still there")


def _kgahp_version(python: str) -> str:
    """Where the benchmarked kgahp comes from: its checkout's commit, or its path."""
    import subprocess

    probe = subprocess.run([python, "-c", "import kgahp, os; print(os.path.dirname("
                            "os.path.dirname(os.path.abspath(kgahp.__file__))))"],
                           capture_output=True, text=True, check=False, timeout=60,
                           cwd="/")     # as counted_kgahp.py runs it: no checkout on sys.path
    where = probe.stdout.strip()
    if probe.returncode != 0 or not where:
        return f"? ({python} cannot import kgahp)"
    head = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False, timeout=30)
    here = os.path.realpath(where) == os.path.realpath(str(REPO))
    return f"{head.stdout.strip() or '?'} ({'this checkout' if here else where})"


def run_phases(args: argparse.Namespace, bench: phases.Bench, target: ClusterTarget,
               results: dict[str, Any], say: Any) -> None:
    chosen = args.phases
    if "life" in chosen:
        say(f"phase 1: {args.life_jobs} whole job lives (API requests per job)")
        results["job_life"] = phases.job_life(bench, args.life_jobs)
    if "limit" in chosen and args.limit_jobs > 0:
        say(f"phase 2: the limit, a bare client creating {args.limit_jobs} pods with "
            f"{args.limit_threads} threads")
        results["limit"] = phases.limit(bench, args.limit_jobs, args.limit_threads)
    if "stages" in chosen and args.stages_jobs > 0:
        say(f"phase 2b: kgahp's submit steps one at a time ({args.stages_jobs} submits)")
        results["stages"] = phases.stages(bench, args.stages_jobs)
    if "scale" in chosen:
        say(f"phase 3: {args.jobs} tracked jobs: submit, status, RSS, recovery")
        results["scale"] = phases.scale(bench, args.jobs, args.paced_samples)
        if not target.is_sim:      # give a real cluster its capacity back
            target.delete_pods(bench.label("bench-scale"), timeout=600)
    if "rate" in chosen:
        say(f"phase 4: rate limiter (QPS=20 BURST=40, {args.rate_jobs} submits)")
        results["rate_limit"] = phases.rate_limit(bench, args.rate_jobs)
    if "429" in chosen:
        say(f"phase 5: 429 with Retry-After on pod creates ({args.retry_jobs} submits)")
        results["retry_after"] = phases.retry_after(bench, args.retry_jobs)
    if "baseline" in chosen and args.baseline_jobs > 0 and "scale" in results:
        from benchmarks import baseline

        if baseline.kubectl_path():
            say(f"phase 6: baseline, one kubectl per operation on {args.baseline_jobs} jobs")
            costs = baseline.run_baseline(target.kubeconfig, bench.iwd, args.baseline_jobs,
                                          target.sleep, target.namespace, target.context)
            results["baseline"] = report.baseline_summary(
                costs, report.headline(results), baseline.kubectl_version() or "kubectl",
                args.baseline_jobs)
        else:
            say("phase 6 skipped: kubectl is not installed")
    if "tiers" in chosen:
        from benchmarks import tiers

        say(f"phase 7: scale tiers {', '.join(f'{t:,}' for t in args.scale)} tracked jobs: "
            "RSS, status, recovery, watch-event throughput")
        results["tiers"] = tiers.run_tiers(bench, args.scale, namespaces=args.namespaces,
                                           events=args.events,
                                           events_window=args.events_window)


def run(args: argparse.Namespace) -> dict[str, Any]:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    workdir = tempfile.mkdtemp(prefix="kgahp-bench-")
    load1, load5, _ = os.getloadavg()
    results: dict[str, Any] = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": procstat.cpu_count(), "cpu_model": _cpu_model(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(), "jobs": args.jobs,
        "kgahp_log_level": args.log_level, "load_average_at_start": load1,
        "load_average_5m_at_start": load5,
    }}
    started = time.monotonic()
    sim: Optional[SimProcess] = None
    target: Optional[ClusterTarget] = None
    try:
        if args.kubeconfig:
            target = ClusterTarget(
                os.path.expanduser(args.kubeconfig), args.namespace, args.context,
                sleep=Workload.from_command(args.image, args.image_command),
                life=Workload.from_command(args.life_image, args.life_command))
        else:
            sim = SimProcess(os.path.join(workdir, "sim"), tls=args.sim_tls).start()
            kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
            target = SimTarget(sim, kubeconfig, args.namespace)
        results["meta"].update({
            "cluster": "sim" if target.is_sim else "kubeconfig",
            "server": target.description, "server_version": target.server_version(),
            "transport": target.api.configuration.host.split(":", 1)[0],
            "namespace": target.namespace, "sleep_workload": phases._describe(target.sleep),
            "api_requests_counted_by": "the sim (server side)" if target.is_sim
            else "kgahp's own process (client side)"})
        if not target.is_sim:
            _cleanup(target, say)
        argv = [args.kgahp_python, *phases.COUNTED_KGAHP[1:]]
        bench = phases.Bench(target, workdir, say, log_level=args.log_level, argv=argv,
                             workload=args.workload, workers=args.workers)
        results["meta"]["kgahp_python"] = args.kgahp_python
        results["meta"]["kgahp_version"] = _kgahp_version(args.kgahp_python)
        results["meta"]["phases"] = list(args.phases)
        results["meta"]["workload"] = args.workload
        results["meta"]["kgahp_workers"] = args.workers
        say(f"cluster: {target.description}, {results['meta']['server_version']}; "
            f"scratch {workdir}; kgahp {results['meta']['kgahp_version']}")
        run_phases(args, bench, target, results, say)
    finally:
        if target is not None and not target.is_sim:
            try:
                _cleanup(target, say)
            except Exception as exc:   # report the run's own failure, not this one
                say(f"warning: cleanup failed: {exc}")
        if sim is not None:
            sim.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["seconds"] = time.monotonic() - started
    results["meta"]["load_average_at_end"] = os.getloadavg()[0]
    results["meta"]["load_average_5m_at_end"] = os.getloadavg()[1]
    return results


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    results = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = report.to_json(results)
    (out / "results.json").write_text(text + "\n")
    summary = report.table(results)
    (out / "results.txt").write_text(summary + "\n")
    if not args.no_chart:
        try:
            if results.get("scale"):
                report.chart(results, str(out / "status_rss.png"))
            if results.get("tiers"):
                from benchmarks import tiers

                tiers.chart(results, str(out / "scale_tiers.png"))
        except ImportError:   # the chart is optional; the figures are not
            print("no chart: matplotlib is not installed (pip install -e '.[bench]')",
                  file=sys.stderr)
    print(text if args.json else summary)
    print(f"\nwritten to {out} in {results['meta']['seconds']:.0f} s", file=sys.stderr)
    return 0 if all(report.verdicts(report.headline(results)).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
