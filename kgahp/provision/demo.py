"""`kgahp demo --pilots`: pilots on demand, on the built-in simulated cluster.

Needs no cluster and no HTCondor. The provisioner's own code (demand by ClassAd matchmaking,
supply, target, pilot pods through the GAHP's pod builder) runs against the simulator; what a
pool would do is played from snapshot files: idle jobs as `condor_q -l` would print them, and
the pilots' startd ads as `condor_status -l` would, written here from the pilots' own pods. The
clock is moved forward where the story waits for a grace period.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import yaml

REQ = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk)'
       ' && (TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')
CPU_ONLY = "TARGET.RequestGPUs =?= undefined || TARGET.RequestGPUs == 0"
SHAPES = {
    "defaults": {"image": "sim.invalid/sleep"},
    "shapes": {
        "cpu-1": {"cpus": 1, "memory": "2Gi", "disk": "4Gi", "maxPilots": 6,
                  "start": CPU_ONLY},
        "cpu-4": {"cpus": 4, "memory": "8Gi", "disk": "8Gi", "start": CPU_ONLY},
        "gpu-1": {"cpus": 2, "memory": "8Gi", "disk": "8Gi", "gpus": 1,
                  "start": "TARGET.RequestGPUs >= 1"},
    },
}
# (how many, RequestCpus, RequestMemory, RequestGPUs, extra Requirements)
KINDS = [(12, 1, 1500, 0, ""), (3, 4, 6000, 0, ""),
         (2, 1, 2000, 1, " && (TARGET.GPUs >= RequestGPUs)"),
         (1, 1, 100, 0, ' && (TARGET.OpSys == "WINDOWS")')]


def _jobs(kinds: list[tuple[int, int, int, int, str]]) -> str:
    ads = []
    for cluster, (count, cpus, memory, gpus, extra) in enumerate(kinds, start=1):
        for proc in range(count):
            ads.append(f"ClusterId = {cluster}\nProcId = {proc}\nJobStatus = 1\nJobUniverse = 5"
                       f'\nOwner = "alice"\nRequestCpus = {cpus}\nRequestMemory = {memory}\n'
                       f"RequestDisk = 100000\nRequestGPUs = {gpus}\nRequirements = {REQ}{extra}\n")
    return "\n".join(ads)


def _startds(pods: list[dict[str, Any]], claimed: dict[str, int], now: float) -> str:
    """The ads each running pilot's startd would publish; `claimed`: shape -> pilots busy."""
    ads, left = [], dict(claimed)
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        name = pod["metadata"]["name"]
        shape = pod["metadata"]["labels"]["kgahp.htcondor.org/pilot-shape"]
        busy = left.get(shape, 0) > 0
        left[shape] = left.get(shape, 0) - 1
        ads.append(f'MyType = "Machine"\nName = "slot1@{name}"\nMachine = "{name}"\n'
                   f'K8sPodName = "{name}"\nKgahpPilotShape = "{shape}"\n'
                   f'State = "{"Claimed" if busy else "Unclaimed"}"\n'
                   f"EnteredCurrentState = {int(now)}\n")
    return "\n".join(ads)


def main(argv: Optional[list[str]] = None) -> int:
    argparse.ArgumentParser(prog="kgahp demo --pilots", description=__doc__.split("\n")[0]
                            ).parse_args(argv)
    from kgahp.config import settings_from_mapping
    from kgahp.kube.api import Kube
    from kgahp.kube.connect import api_client
    from kgahp.podspec import load_templates
    from kgahp.provision.cycle import Provisioner, format_table
    from kgahp.provision.shapes import load_shapes
    from kgahp_sim import SimCluster, SimConfig

    work = Path(tempfile.mkdtemp(prefix="kgahp-pilots-demo-"))
    sim = SimCluster(SimConfig(workdir=str(work / "sim"), nodes=4, cpu="16", memory="64Gi",
                               gpus=1, schedule_delay=0.01,
                               start_delay=0.1)).start()
    try:
        (work / "shapes.yaml").write_text(yaml.safe_dump(SHAPES))
        jobs, startds = work / "jobs.ads", work / "startds.ads"
        jobs.write_text(_jobs(KINDS))
        startds.write_text("")
        settings = settings_from_mapping({
            "KUBECONFIG": sim.write_kubeconfig(str(work / "kubeconfig")),
            "PROVISION_SHAPES": str(work / "shapes.yaml"), "RUN_AS_USER": "image",
            "RUN_AS_GROUP": "image", "PROVISION_IDLE_GRACE": "300"})
        offset = [0.0]
        prov = Provisioner(settings, load_shapes(settings.provision.shapes),
                           load_templates(settings.pod),
                           kube=Kube(api_client(settings.kube), settings.kube),
                           jobs_file=str(jobs), startds_file=str(startds),
                           clock=lambda: time.time() + offset[0])
        kube = prov.actuator.kube
        assert kube is not None

        def pods() -> list[dict[str, Any]]:
            return [p for p in prov.actuator.list_pilots(prov.namespaces)
                    if not p["metadata"].get("deletionTimestamp")]

        def step(title: str) -> None:
            print(f"\n== {title}", flush=True)
            print(format_table(prov.cycle()), end="", flush=True)

        print(f"Shapes (from {work / 'shapes.yaml'}): cpu-1 (at most 6), cpu-4, gpu-1.\n"
              "Idle jobs: 12 one-core, 3 four-core, 2 GPU, 1 that asks for Windows.")
        step("1. Idle jobs: pilots are created for the shapes that can run them")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                (p.get("status") or {}).get("phase") != "Running" for p in pods()):
            time.sleep(0.2)
        running = pods()
        print(f"\n{len(running)} pilot pods are running in the simulated cluster: "
              f"{', '.join(sorted(p['metadata']['name'] for p in running)[:3])}, ...")
        startds.write_text(_startds(running, {"cpu-1": 6, "cpu-4": 2, "gpu-1": 1},
                                    time.time()))
        jobs.write_text(_jobs([(6, 1, 1500, 0, ""), (1, 4, 6000, 0, ""),
                               (1, 1, 2000, 1, " && (TARGET.GPUs >= RequestGPUs)"),
                               (1, 1, 100, 0, ' && (TARGET.OpSys == "WINDOWS")')]))
        step("2. The pilots joined the pool and took jobs (their startd ads say so)")
        jobs.write_text(_jobs([(1, 1, 100, 0, ' && (TARGET.OpSys == "WINDOWS")')]))
        startds.write_text(_startds(pods(), {"cpu-1": 2}, time.time()))
        step("3. The work is done: only two pilots are still busy; the idle ones get a grace")
        offset[0] += 301
        step("4. Five minutes later: unclaimed pilots are removed, busy ones never")
        print(f"\n{len(pods())} pilot pods left (the busy ones). The same table is what "
              "`kgahp provision --once --dry-run --jobs FILE --startds FILE` prints.")
    finally:
        sim.stop()
    return 0
