"""The prototype's approach, for comparison on the same simulated cluster: one short-lived
`kubectl` process per submit (`kubectl create -f`) and per status (`kubectl get pod <name>`,
whose human-readable output the old scripts grep). The bash wrapper blahpd ran around each
kubectl is left out, which favours the baseline."""

from __future__ import annotations

import copy
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from benchmarks.gahpclient import job_ad
from benchmarks.target import SIM_SLEEP, Workload
from kgahp.config import settings_from_mapping
from kgahp.podspec import names
from kgahp.podspec.templates import load_templates
from kgahp.render import render_text

BASELINE_INSTANCE = "bench-baseline"


@dataclass(frozen=True)
class OpCost:
    wall: list[float]        # seconds per operation
    cpu: list[float]         # CPU seconds (user + system) of the child process per operation


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(argv: Sequence[str], stdin: bytes = b"") -> tuple[float, float, bytes]:
    cpu0, t0 = _children_cpu(), time.monotonic()
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, check=False)
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {proc.stderr.decode()[:300]}")
    return wall, cpu, proc.stdout


def kgahp_pod(iwd: str, job_dir: str, workload: Workload, instance: str,
              namespace: str = "default") -> dict:
    """The pod kgahp renders for the benchmark's ad, labelled with `instance`. Without the
    tracking finalizer: no kgahp manages these pods, so nothing would ever remove it."""
    settings = settings_from_mapping({"TRANSFER_MODE": "none", "INSTANCE": instance,
                                      "NAMESPACE": namespace, "TRACKING_FINALIZER": "false"})
    pod = render_text(job_ad(iwd, job_dir, workload.image, workload.cmd, workload.arguments),
                      settings, load_templates(settings.pod))
    pod = copy.deepcopy(pod)
    pod["metadata"].setdefault("labels", {})[names.LABEL_INSTANCE] = instance
    return pod


def baseline_pod(iwd: str, index: int, workload: Workload = SIM_SLEEP,
                 namespace: str = "default") -> dict:
    """The pod kgahp would create for the same ad, renamed as the prototype's own pod."""
    pod = kgahp_pod(iwd, f"base_{index}.0", workload, BASELINE_INSTANCE, namespace)
    pod["metadata"]["name"] = f"baseline-{index}"
    return pod


def kubectl_path() -> str:
    return shutil.which("kubectl") or ""


def run_baseline(kubeconfig: str, iwd: str, count: int, workload: Workload = SIM_SLEEP,
                 namespace: str = "default", context: str = "") -> dict[str, OpCost]:
    """Submit `count` pods and query each once, one fresh kubectl process per operation."""
    kubectl = kubectl_path()
    if not kubectl:
        raise RuntimeError("kubectl is not installed")
    base = [kubectl, "--kubeconfig", kubeconfig, "--request-timeout=30s", "-n", namespace]
    if context:
        base += ["--context", context]
    submit = OpCost([], [])
    status = OpCost([], [])
    # warm the on-disk discovery cache as a long-running CE's kubectl would have it
    _timed_run([*base, "get", "pods", "-l", "kgahp.bench/warm=1"])
    for i in range(count):
        manifest = yaml.safe_dump(baseline_pod(iwd, i, workload, namespace)).encode()
        wall, cpu, _ = _timed_run([*base, "create", "--validate=false", "-f", "-"], manifest)
        submit.wall.append(wall)
        submit.cpu.append(cpu)
    for i in range(count):
        wall, cpu, out = _timed_run([*base, "get", "pod", f"baseline-{i}"])
        if f"baseline-{i}".encode() not in out:
            raise RuntimeError(f"kubectl get pod baseline-{i} printed {out[:200]!r}")
        status.wall.append(wall)
        status.cpu.append(cpu)
    return {"submit": submit, "status": status}


def kubectl_version() -> str:
    try:
        out = subprocess.run([kubectl_path(), "version", "--client"], capture_output=True,
                             text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0] if out else ""


__all__ = ["BASELINE_INSTANCE", "OpCost", "baseline_pod", "kgahp_pod", "kubectl_path",
           "kubectl_version", "run_baseline"]
