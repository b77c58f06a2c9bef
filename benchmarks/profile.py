"""`python benchmarks/profile.py [--jobs N] [--phase submit|status|recovery]`: where kgahp's
time goes, sampled with py-spy (`pip install py-spy`) while the benchmark's load runs.

Writes collapsed stacks to benchmarks/out/profile-<phase>.txt (feed them to flamegraph.pl or
speedscope) and prints the functions with the most samples, inclusive and self.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import phases  # noqa: E402
from benchmarks.gahpclient import (  # noqa: E402
    BenchDriver,
    pipeline,
    status_requests,
    submit_requests,
)
from benchmarks.simproc import SimProcess  # noqa: E402
from benchmarks.target import SimTarget  # noqa: E402
from kgahp.testing import condor_env  # noqa: E402

OUT = REPO / "benchmarks" / "out"


def top_frames(collapsed: str, limit: int = 25) -> tuple[list[tuple[str, int]],
                                                         list[tuple[str, int]], int]:
    """(inclusive, self, total samples) from py-spy's collapsed ('raw') output: each line is
    `frame;frame;...;leaf count`. A frame counts once per stack however deep it recurs."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in {_function(f) for f in frames}:
            inclusive[frame] += count
    return inclusive.most_common(limit), own.most_common(limit), total


def _function(frame: str) -> str:
    """'name (path/file.py:123)' -> 'name (path/file.py)': inclusive time is per function."""
    head, sep, where = frame.rpartition(" (")
    if not sep:
        return frame
    return f"{head} ({where.rsplit(':', 1)[0].rstrip(')')})"


def _pyspy(pid: int, out: str, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "500", "--duration", str(seconds), "--output", out,
                             "--gil"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--phase", choices=("submit", "status", "recovery"), default="status")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    if not shutil.which("py-spy"):
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    out = str(OUT / f"profile-{args.phase}.txt")
    workdir = tempfile.mkdtemp(prefix="kgahp-profile-")
    sim = SimProcess(os.path.join(workdir, "sim")).start()
    try:
        kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
        bench = phases.Bench(SimTarget(sim, kubeconfig), workdir,
                             lambda s: print(s, file=sys.stderr))
        driver, knobs = bench.start("bench-profile", **phases.FAST_API)
        time.sleep(1.0)
        reqs = submit_requests(bench.iwd, "prof", args.jobs, "sim.invalid/sleep")
        if args.phase == "submit":
            spy = _pyspy(driver.pid, out, args.seconds)
            time.sleep(0.5)
            pipeline(driver, reqs)
            spy.wait()
        else:
            job_ids = [t.result[3] for t in pipeline(driver, reqs)]
            bench.wait_phase("bench-profile", lambda p: p.get("Running", 0) >= args.jobs, 300)
            time.sleep(1.0)
            if args.phase == "recovery":
                driver.kill()
                t0 = time.monotonic()
                driver = BenchDriver(env=condor_env(knobs))
                spy = _pyspy(driver.pid, out, 60)
                driver.handshake()
                pending = list(job_ids)
                while pending:
                    timed = pipeline(driver, status_requests(pending))
                    pending = [j for j, t in zip(pending, timed)
                               if t.result[1] != "0" or t.result[3] != "2"]
                print(f"recovered in {time.monotonic() - t0:.2f} s", file=sys.stderr)
                spy.send_signal(signal.SIGINT)     # py-spy writes its output on SIGINT
                spy.wait()
                driver.close(timeout=60)
            else:
                spy = _pyspy(driver.pid, out, args.seconds)
                time.sleep(0.5)
                deadline = time.monotonic() + args.seconds - 1
                while time.monotonic() < deadline:
                    pipeline(driver, status_requests(job_ids[:2000]))
                spy.wait()
        if driver.proc.poll() is None:
            driver.close()
    finally:
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = Path(out).read_text() if os.path.exists(out) else ""
    inclusive, own, total = top_frames(text)
    print(f"{total} samples in {out}")
    print("inclusive:")
    for frame, n in inclusive:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    print("self:")
    for frame, n in own:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
