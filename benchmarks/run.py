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
    parser.add_argument("--limit-threads", type=int, default=phases.WORKERS,
                        help="threads of the bare client (default 16, kgahp's KGAHP_WORKERS)")
    parser.add_argument("--retry-jobs", type=int, default=0,
                        help="submits of the 429 Retry-After phase (default 100; sim only)")
    parser.add_argument("--kubeconfig", default="",
                        help="run against this cluster instead of the built-in simulator")
    parser.add_argument("--context", default="", help="kubeconfig context (with --kubeconfig)")
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
    parser.add_argument("--workload", choices=("pod", "job"), default="pod",
                        help="what one job attempt is (KGAHP_WORKLOAD): a pod or a batch/v1 Job")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
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
    if args.context and not args.kubeconfig:
        parser.error("--context needs --kubeconfig")
    if args.kubeconfig and not os.path.exists(os.path.expanduser(args.kubeconfig)):
        parser.error(f"--kubeconfig {args.kubeconfig} does not exist")
    return args


BENCH_INSTANCES = ("bench-life", "bench-limit", "bench-scale", "bench-qps", "bench-429",
                   "bench-baseline")


def _cleanup(target: ClusterTarget, say: Any) -> None:
    """Delete every pod an earlier or this run left on a cluster that outlives the run."""
    from kgahp.podspec import names

    label = f"{names.LABEL_INSTANCE} in ({','.join(BENCH_INSTANCES)})"
    if target.phases(label):
        say(f"deleting leftover benchmark pods ({label}) in namespace {target.namespace}")
        if not target.delete_pods(label, timeout=600):
            say("warning: some benchmark pods are still there")


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
            sim = SimProcess(os.path.join(workdir, "sim")).start()
            kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
            target = SimTarget(sim, kubeconfig, args.namespace)
        results["meta"].update({
            "cluster": "sim" if target.is_sim else "kubeconfig",
            "server": target.description, "server_version": target.server_version(),
            "namespace": target.namespace, "sleep_workload": phases._describe(target.sleep),
            "api_requests_counted_by": "the sim (server side)" if target.is_sim
            else "kgahp's own process (client side)"})
        if not target.is_sim:
            _cleanup(target, say)
        bench = phases.Bench(target, workdir, say, log_level=args.log_level,
                             workload=args.workload)
        results["meta"]["workload"] = args.workload
        say(f"cluster: {target.description}, {results['meta']['server_version']}; "
            f"scratch {workdir}")
        say(f"phase 1: {args.life_jobs} whole job lives (API requests per job)")
        results["job_life"] = phases.job_life(bench, args.life_jobs)
        if args.limit_jobs > 0:
            say(f"phase 2: the limit, a bare client creating {args.limit_jobs} pods with "
                f"{args.limit_threads} threads")
            results["limit"] = phases.limit(bench, args.limit_jobs, args.limit_threads)
        say(f"phase 3: {args.jobs} tracked jobs: submit, status, RSS, recovery")
        results["scale"] = phases.scale(bench, args.jobs, args.paced_samples)
        if not target.is_sim:      # give a real cluster its capacity back
            target.delete_pods(bench.label("bench-scale"), timeout=600)
        say(f"phase 4: rate limiter (QPS=20 BURST=40, {args.rate_jobs} submits)")
        results["rate_limit"] = phases.rate_limit(bench, args.rate_jobs)
        say(f"phase 5: 429 with Retry-After on pod creates ({args.retry_jobs} submits)")
        results["retry_after"] = phases.retry_after(bench, args.retry_jobs)
        if args.baseline_jobs > 0:
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
            report.chart(results, str(out / "status_rss.png"))
        except ImportError:   # the chart is optional; the figures are not
            print("no chart: matplotlib is not installed (pip install -e '.[bench]')",
                  file=sys.stderr)
    print(text if args.json else summary)
    print(f"\nwritten to {out} in {results['meta']['seconds']:.0f} s", file=sys.stderr)
    return 0 if all(report.verdicts(report.headline(results)).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
