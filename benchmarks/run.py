"""`python benchmarks/run.py [--jobs N] [--quick] [--json]`: how cheap kgahp is, reproducibly.

Drives the real kgahp executable over the GAHP protocol exactly as the gridmanager does (pipes,
async mode, 50 requests in flight) against the simulated cluster running in its own process
(scripted containers, no payloads), and the prototype's one-kubectl-per-operation approach on
the same cluster. Writes benchmarks/out/results.json and benchmarks/out/status_rss.png.
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
    parser.add_argument("--log-level", default="INFO",
                        help="KGAHP_DEBUG of the benchmarked kgahp (the default is INFO)")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs = min(args.jobs, 500)
        args.life_jobs = args.life_jobs or 50
        args.rate_jobs = args.rate_jobs or 100
        args.baseline_jobs = min(args.baseline_jobs, 10)
    args.life_jobs = args.life_jobs or 200
    args.rate_jobs = args.rate_jobs or 200
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    workdir = tempfile.mkdtemp(prefix="kgahp-bench-")
    results: dict[str, Any] = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": procstat.cpu_count(), "cpu_model": _cpu_model(),
        "python": platform.python_version(), "jobs": args.jobs,
        "kgahp_log_level": args.log_level, "load_average_at_start": os.getloadavg()[0],
        "sim": f"kgahp sim in a child process, {phases.NAMESPACE} namespace, "
               "scripted containers (run_processes=False)",
    }}
    started = time.monotonic()
    sim = SimProcess(os.path.join(workdir, "sim")).start()
    try:
        kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        bench = phases.Bench(sim, kubeconfig, workdir, say, log_level=args.log_level)
        say(f"sim at {sim.url} (pid {sim.pid}); scratch {workdir}")
        say(f"phase 1: {args.life_jobs} whole job lives (API requests per job)")
        results["job_life"] = phases.job_life(bench, args.life_jobs)
        say(f"phase 2: {args.jobs} tracked jobs: submit, status, RSS, recovery")
        results["scale"] = phases.scale(bench, args.jobs, args.paced_samples)
        say(f"phase 3: rate limiter (QPS=20 BURST=40, {args.rate_jobs} submits)")
        results["rate_limit"] = phases.rate_limit(bench, args.rate_jobs)
        if args.baseline_jobs > 0:
            from benchmarks import baseline

            if baseline.kubectl_path():
                say(f"phase 4: baseline, one kubectl per operation on {args.baseline_jobs} jobs")
                costs = baseline.run_baseline(kubeconfig, bench.iwd, args.baseline_jobs)
                results["baseline"] = report.baseline_summary(
                    costs, report.headline(results), baseline.kubectl_version() or "kubectl",
                    args.baseline_jobs)
            else:
                say("phase 4 skipped: kubectl is not installed")
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["seconds"] = time.monotonic() - started
    results["meta"]["load_average_at_end"] = os.getloadavg()[0]
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
