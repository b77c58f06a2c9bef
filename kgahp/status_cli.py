"""`kgahp status`: the pods kgahp manages, as an admin at 3 a.m. wants to see them.

One list call per namespace (label selector), then the same lifecycle table the GAHP uses, so
what this prints is what the gridmanager is told.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from kgahp import lifecycle
from kgahp.config import Settings
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING

NAMES: dict[int, str] = {IDLE: "Idle", RUNNING: "Running", REMOVED: "Removed",
                         COMPLETED: "Completed", HELD: "Held"}


def _age(created: Optional[str], now: float) -> str:
    t = lifecycle.parse_time(created)
    if t is None:
        return "?"
    s = int(now - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def rows(pods: list[dict], now: float, settings: Settings) -> list[list[str]]:
    from kgahp.podspec import build, names

    out = []
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""),
                                           p["metadata"].get("name", ""))):
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        ann = meta.get("annotations") or {}
        verdict = lifecycle.classify(pod, now=now, settings=settings.lifecycle,
                                     main_container=build.MAIN_CONTAINER,
                                     restarts=lifecycle.restarts_of(pod))
        state = verdict.final if verdict.action is lifecycle.Action.COLLECT else verdict.state
        status = NAMES.get(state.job_status if state else 0, "?")
        if state and state.hold_code:
            status += f" ({state.hold_code})"
        out.append([
            f"kubernetes/{meta.get('namespace')}/{labels.get(names.LABEL_JOB, '?')}",
            meta.get("name", "?"),
            ann.get(names.ANN_OWNER) or labels.get(names.LABEL_OWNER, "?"),
            (pod.get("status") or {}).get("phase", "?"),
            status,
            verdict.reason[:60],
            _age(meta.get("creationTimestamp"), now),
        ])
    return out


def job_rows(jobs: list[dict], pods: list[dict], now: float) -> list[list[str]]:
    """Job mode: a row for each Job that has no pod (yet, or any more), from what the Job
    says (suspended and waiting for quota, waiting for MultiKueue, its deadline passed)."""
    from kgahp import workloads
    from kgahp.podspec import names

    with_pods = {workloads.attempt_name(p) for p in pods}
    out = []
    for job in sorted(jobs, key=lambda j: (j["metadata"].get("namespace", ""),
                                           j["metadata"].get("name", ""))):
        meta = job["metadata"]
        if meta.get("name") in with_pods:
            continue
        labels = meta.get("labels") or {}
        verdict = lifecycle.jobs.without_pod(job, restarts=0)
        state = verdict.state if verdict is not None else None
        status = NAMES.get(state.job_status if state else 0, "?")
        if state and state.hold_code:
            status += f" ({state.hold_code})"
        out.append([
            f"kubernetes/{meta.get('namespace')}/{labels.get(names.LABEL_JOB, '?')}",
            f"job/{meta.get('name', '?')}",
            (meta.get("annotations") or {}).get(names.ANN_OWNER)
            or labels.get(names.LABEL_OWNER, "?"),
            "-", status, (verdict.reason if verdict else "Job ended; its pod is gone")[:60],
            _age(meta.get("creationTimestamp"), now),
        ])
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kgahp status", description=__doc__)
    parser.add_argument("--all-instances", action="store_true",
                        help="show every kgahp instance's pods, not just this user's")
    parser.add_argument("--namespace", "-n", action="append",
                        help="namespace(s) to look in (default: the configured ones)")
    parser.add_argument("--job", help="only this job (the last part of its job id)")
    args = parser.parse_args(argv)

    from kgahp.config import load_settings
    from kgahp.errors import KgahpError
    from kgahp.kube.api import Kube, label_selector
    from kgahp.kube.connect import api_client
    from kgahp.kube.jobs import list_jobs
    from kgahp.podspec import names
    from kgahp.podspec.templates import load_templates
    from kgahp.workloads import uses_jobs

    try:
        settings = load_settings()
        kube = Kube(api_client(settings.kube), settings.kube, retry_deadline=20)
        selector = {names.LABEL_MANAGED_BY: names.MANAGED_BY_VALUE}
        if not args.all_instances:
            selector[names.LABEL_INSTANCE] = names.label_value(settings.instance)
        if args.job:
            selector[names.LABEL_JOB] = args.job
        pods: list[dict] = []
        jobs: list[dict] = []
        with_jobs = uses_jobs(settings, load_templates(settings.pod))
        for ns in args.namespace or settings.kube.namespaces:
            items, _ = kube.list_pods(ns, label_selector(selector))
            pods.extend(items)
            if with_jobs:   # job mode: Jobs that have no pod say why
                jobs.extend(list_jobs(kube, ns, label_selector(selector))[0])
    except KgahpError as exc:
        print(f"kgahp status: {exc}", file=sys.stderr)
        return 1
    table = [["JOB ID", "POD", "OWNER", "PHASE", "JOBSTATUS", "REASON", "AGE"]]
    table += rows(pods, time.time(), settings) + job_rows(jobs, pods, time.time())
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=sys.stdout)
    if len(table) == 1:
        print("(no pods)", file=sys.stdout)   # a CLI of its own: stdout is its output
    return 0
