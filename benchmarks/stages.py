"""What one submit costs kgahp, step by step, with nothing else running: the serial floor.

`python -m benchmarks.stages --knobs KNOBS.json --ad-dir IWD --count N --prefix NAME` loads
kgahp's settings from the knobs (as the benchmarked kgahp does), then submits N ads one at a
time through the steps of kgahp's submit path, each timed with this thread's CPU clock:
parsing the ad, the policy check, rendering and verifying the pod, the store write, and the
create request. Last, the same pods again (renamed) through the bare POST the limit makes, so
the two requests compare in one process. No watch, no reconciler, no protocol, one thread: the
sum is what a submit costs kgahp when nothing competes for the interpreter; the scale phase's
CPU per submit minus this sum is what running it among kgahp's other threads adds.

It prints one JSON line: the steps' CPU milliseconds per submit (mean and median) and the
pods made. The pods carry the instance label NAME; the caller deletes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS = ("parse", "policy", "render", "store", "create", "bare_post")


def run(knobs: dict[str, str], ad_dir: str, count: int, image: str, cmd: str,
        arguments: str) -> dict[str, Any]:
    from benchmarks.gahpclient import job_ad
    from kgahp import manifests
    from kgahp.config.loading import load_settings
    from kgahp.jobad.parse import parse_submit_ad
    from kgahp.kube import jsonio
    from kgahp.kube.api import Kube
    from kgahp.kube.connect import api_client
    from kgahp.podspec import build, names, policy
    from kgahp.podspec.templates import load_templates
    from kgahp.store import JobStore
    from kgahp.testing import condor_env

    os.environ.update(condor_env(knobs))
    settings = load_settings()
    templates = load_templates(settings.pod)
    kube = Kube(api_client(settings.kube, pool_size=2), settings.kube)
    state = tempfile.mkdtemp(prefix="kgahp-stages-")
    store = JobStore(os.path.join(state, "jobs.sqlite"))
    clock = time.thread_time
    spent: dict[str, list[float]] = {step: [] for step in STEPS}
    pods: list[dict] = []

    @contextmanager
    def timed(step: str) -> Iterator[None]:
        start = clock()
        yield
        spent[step].append(clock() - start)

    for i in range(count):
        text = job_ad(ad_dir, f"stages_{i}.0", image, cmd, arguments)
        with timed("parse"):
            req = parse_submit_ad(text)
        with timed("policy"):
            policy.check(req, settings, templates)
            namespace = build.choose_namespace(req, settings, templates)
            job = names.job_base_name(req.job_directory, settings.pod.pod_name_prefix)
        with timed("render"):
            made = manifests.assemble(req, settings, templates, attempt=0, restarts=0,
                                      bundle=None, creds={})
        with timed("store"):
            store.record_submit(job, namespace, 0, text)
        with timed("create"):
            kube.create_pod(namespace, made.pod)
        pods.append(made.pod)

    pool = kube.api_client.rest_client.pool_manager
    _, url, headers, _, _ = kube.api_client.param_serialize(
        method="POST", resource_path=f"/api/v1/namespaces/{settings.kube.namespace}/pods",
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"])
    for pod in pods:
        meta = pod["metadata"]
        body = jsonio.dumps({**pod, "metadata": {**meta, "name": meta["name"] + "-bare",
                                                 "finalizers": []}})

        with timed("bare_post"):
            resp = pool.request("POST", url, body=body, headers=headers, timeout=60)
            if resp.status != 201:
                raise RuntimeError(f"bare POST: HTTP {resp.status}: {resp.data[:200]!r}")
            jsonio.loads(resp.data)

    shutil.rmtree(state, ignore_errors=True)
    per_step = {step: {"mean_ms": 1000 * statistics.fmean(values),
                       "median_ms": 1000 * statistics.median(values)}
                for step, values in spent.items() if values}
    own = sum(per_step[s]["mean_ms"] for s in ("parse", "policy", "render", "store", "create"))
    return {"count": count, "steps": per_step, "submit_ms": own,
            "bare_post_ms": per_step["bare_post"]["mean_ms"], "pods": 2 * len(pods)}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--knobs", required=True, help="a JSON file of kgahp knobs")
    parser.add_argument("--ad-dir", required=True, help="the ads' Iwd (an existing folder)")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--image", default="sim.invalid/sleep")
    parser.add_argument("--cmd", default="/bin/true")
    parser.add_argument("--arguments", default="")
    args = parser.parse_args(argv)
    with open(args.knobs) as fh:
        knobs = json.load(fh)
    print(json.dumps(run(knobs, args.ad_dir, args.count, args.image, args.cmd,
                         args.arguments)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
