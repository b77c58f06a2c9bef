"""`python benchmarks/provision_cycle.py [--jobs N] [--kinds K] [--shapes S] [--pilots P]`:
one `kgahp provision` cycle at scale, its CPU time and its API requests.

Default scale (issue 17): 10,000 idle jobs of 200 kinds, 20 shapes, 1,000 pilot pods already
running (80 % of them busy, as their startd ads say). The simulated cluster runs in its own
process (scripted containers), so its CPU is not counted. The jobs and startd ads come from
snapshot files as `--jobs`/`--startds` would read them; parsing the job file is timed apart
(a live query gets the ads already parsed by htcondor2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:          # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.simproc import SimProcess  # noqa: E402

REQ = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk)'
       ' && (TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')
CPU_ONLY = "TARGET.RequestGPUs =?= undefined || TARGET.RequestGPUs == 0"


def shapes_yaml(count: int) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    for i in range(count):
        gpu = i >= count - max(1, count // 5)
        shapes[f"s{i:02d}"] = {
            "cpus": [1, 2, 4, 8][i % 4], "memory": f"{2 * (1 + i // 4)}Gi", "disk": "20Gi",
            "maxPilots": 500, "gpus": 1 if gpu else 0,
            "start": "TARGET.RequestGPUs >= 1" if gpu else CPU_ONLY}
    return {"defaults": {"image": "sim.invalid/sleep"}, "shapes": shapes}


def jobs_text(jobs: int, kinds: int) -> str:
    ads = []
    for n in range(jobs):
        k = n % kinds
        gpu = k % 10 == 9
        ads.append("\n".join([
            f"ClusterId = {1000 + k}", f"ProcId = {n // kinds}", "JobStatus = 1",
            "JobUniverse = 5", f'Owner = "user{k % 10}"', f'Cmd = "/home/user{k % 10}/run"',
            f'Args = "--event {n}"', f"QDate = {1767225600 + n}", "ImageSize = 25",
            "DiskUsage = 25", "MemoryUsage = ((ResidentSetSize + 1023) / 1024)",
            f"RequestCpus = {[1, 2, 4, 8][k % 4]}", f"RequestMemory = {1000 + 150 * k}",
            "RequestDisk = 1048576", f"RequestGPUs = {1 if gpu else 0}",
            f"Requirements = {REQ}" + (" && (TARGET.GPUs >= RequestGPUs)" if gpu else ""),
            'ShouldTransferFiles = "YES"', 'WhenToTransferOutput = "ON_EXIT"',
            f'GlobalJobId = "ap1.example.org#{1000 + k}.{n // kinds}#1767225600"']) + "\n")
    return "\n".join(ads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--kinds", type=int, default=200)
    parser.add_argument("--shapes", type=int, default=20)
    parser.add_argument("--pilots", type=int, default=1_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import classad2
    import yaml

    from kgahp.config import settings_from_mapping
    from kgahp.kube.api import Kube
    from kgahp.kube.connect import api_client
    from kgahp.podspec import load_templates
    from kgahp.provision import demand as demand_mod
    from kgahp.provision.actuate import BUSY_COST
    from kgahp.provision.cycle import Provisioner
    from kgahp.provision.pilots import pilot_pod
    from kgahp.provision.shapes import load_shapes
    from kgahp.provision.supply import ANN_DELETION_COST

    work = Path(tempfile.mkdtemp(prefix="kgahp-provision-bench-"))
    sim = SimProcess(str(work / "sim")).start()
    try:
        kubeconfig = sim.write_kubeconfig(str(work / "kubeconfig"))
        (work / "shapes.yaml").write_text(yaml.safe_dump(shapes_yaml(args.shapes)))
        (work / "jobs.ads").write_text(jobs_text(args.jobs, args.kinds))
        knobs = {"KUBECONFIG": kubeconfig, "PROVISION_SHAPES": str(work / "shapes.yaml"),
                 "PROVISION_MAX_PILOTS": str(args.pilots + 5_000), "RUN_AS_USER": "image",
                 "RUN_AS_GROUP": "image"}
        settings = settings_from_mapping(knobs)
        shapes = load_shapes(settings.provision.shapes)
        templates = load_templates(settings.pod)
        # the pilots an earlier cycle created: busy ones already carry their deletion cost
        setup = Kube(api_client(settings.kube),
                     settings_from_mapping({**knobs, "QPS": "0"}).kube)
        ads = []
        now = int(time.time())
        for i in range(args.pilots):
            shape = shapes[i % len(shapes)]
            pod = pilot_pod(shape, settings, templates, suffix=f"b{i}")
            name = pod["metadata"]["name"]
            busy = i % 5 != 0
            if busy:
                pod["metadata"]["annotations"][ANN_DELETION_COST] = BUSY_COST
            setup.create_pod("default", pod)
            ads.append(f'MyType = "Machine"\nName = "slot1@{name}"\nMachine = "{name}"\n'
                       f'K8sPodName = "{name}"\nKgahpPilotShape = "{shape.name}"\n'
                       f'State = "{"Claimed" if busy else "Unclaimed"}"\n'
                       f"EnteredCurrentState = {now}\n")
        (work / "startds.ads").write_text("\n".join(ads))
        deadline = time.monotonic() + 120
        while sim.phases("default", "kgahp.htcondor.org/role=pilot").get("Running", 0) < \
                args.pilots and time.monotonic() < deadline:
            time.sleep(0.5)

        t0 = time.process_time()
        parsed = list(classad2.parseAds((work / "jobs.ads").read_text()))
        parse_cpu = time.process_time() - t0
        prov = Provisioner(settings, shapes, templates,
                           kube=Kube(api_client(settings.kube), settings.kube),
                           jobs_file=str(work / "jobs.ads"), startds_file=str(work / "startds.ads"))
        t0 = time.process_time()
        found = demand_mod.demand(parsed, prov.machines, prov.target_refs, prov.constraint)
        demand_cpu = time.process_time() - t0
        results = []
        for label in ("first cycle", "second cycle"):
            before = sim.total_requests()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = prov.cycle()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            requests = sim.total_requests() - before
            results.append({
                "cycle": label, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "cpu_without_parsing_s": round(cpu - parse_cpu, 3),
                "api_requests": requests, "created": len(report.actions.created),
                "deleted": len(report.actions.deleted),
                "annotated": len(report.actions.annotated),
                "requests_beyond_writes": requests - len(report.actions.created)
                - len(report.actions.deleted) - len(report.actions.annotated)})
        out = {"jobs": args.jobs, "kinds": found.groups, "shapes": args.shapes,
               "pilots": args.pilots, "parse_jobs_cpu_s": round(parse_cpu, 3),
               "demand_cpu_s": round(demand_cpu, 3), "cycles": results}
    finally:
        sim.stop()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['jobs']} idle jobs ({out['kinds']} kinds), {out['shapes']} shapes, "
          f"{out['pilots']} pilot pods")
    print(f"parsing the condor_q -l snapshot: {out['parse_jobs_cpu_s']} s CPU; demand "
          f"(grouping + matching): {out['demand_cpu_s']} s CPU")
    for r in results:
        print(f"{r['cycle']}: {r['cpu_s']} s CPU ({r['cpu_without_parsing_s']} s without "
              f"parsing), {r['wall_s']} s wall, {r['api_requests']} API requests = "
              f"{r['created']} creates + {r['deleted']} deletes + {r['annotated']} patches + "
              f"{r['requests_beyond_writes']} others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
