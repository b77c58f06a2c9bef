"""The long version of the fault suite, in one command:

    python tests/faults/long_run.py [--jobs 1000] [--kills 100] [--seed 1] [--down 120]

1. the fault matrix with the API server down for --down seconds (CI uses 20 s);
2. the crash campaign: --jobs jobs, --kills SIGKILLs of kgahp at random moments;
3. the hostile-input fuzzers with ten times CI's examples (KGAHP_FUZZ_SCALE=10).
Prints the figures (faults injected, jobs run, crashes survived, inputs fuzzed, lost /
duplicated / leaked) and exits non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))          # crashrun
sys.path.insert(0, str(HERE.parent))   # harness (shared with tests/e2e)


def run_pytest(files: list[str], env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-o", "timeout=3600", *files]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, cwd=REPO, env=env)


def crash_campaign(jobs: int, kills: int, seed: int) -> bool:
    from crashrun import run_campaign
    from harness import Gahp, start_sim

    tmp = Path(tempfile.mkdtemp(prefix="kgahp-long-"))
    sim = start_sim(str(tmp / "sim"), seed=seed)
    gahp = Gahp(sim, tmp / "gahp", {"POD_RETENTION": "1", "CONFIG_ERROR_GRACE": "20",
                                    "QPS": "200", "BURST": "400"})
    try:
        report = run_campaign(gahp, jobs=jobs, kills=kills, seed=seed, timeout=3600)
    finally:
        gahp.driver.kill()
        sim.stop()
    print("crash campaign:", report.summary(), flush=True)
    for kind, items in report.problems().items():
        print(f"  {kind}: {len(items)}", *items[:20], sep="\n    ")
    print(f"  (kgahp log and state under {tmp})")
    return not report.problems()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--down", type=float, default=120.0)
    args = parser.parse_args()
    env = {**os.environ, "KGAHP_FAULTS_DOWN_SECONDS": str(args.down),
           "KGAHP_FUZZ_SCALE": "10"}
    started = time.monotonic()
    results = {
        "fault matrix": run_pytest(["tests/faults/test_faults_matrix.py"], env) == 0,
        "crash campaign": crash_campaign(args.jobs, args.kills, args.seed),
        "hostile input": run_pytest(["tests/faults/test_faults_protocol_fuzz.py",
                                     "tests/faults/test_faults_hostile_ads.py",
                                     "tests/faults/test_faults_secrets.py"], env) == 0,
    }
    print(f"\nlong run finished in {time.monotonic() - started:.0f} s")
    for name, ok in results.items():
        print(f"  {name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
