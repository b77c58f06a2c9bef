"""The limit: a bare persistent client creating pods as fast as the server takes them.

`python benchmarks/limit.py --kubeconfig K --pod-file POD.json --count N [--threads 16]` creates
N copies of the pod (named `<prefix>-<i>`) with `threads` threads sharing one urllib3 pool of the
official client's ApiClient (its kubeconfig loading, TLS and authentication), raw JSON in both
directions, headers prepared once. No rendering, no pacing, no cache: whatever kgahp spends
beyond this is its own overhead. It prints one JSON line: pods, seconds, its own CPU seconds
(getrusage of this process, measured around the creates only, so neither its start-up nor the
server is included) and the requests it sent.

A 429 or 5xx answer is retried after Retry-After (or 0.2 s), as any polite client would.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import threading
import time
from typing import Any, Optional


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(kubeconfig: str, context: str, namespace: str, pod: dict[str, Any], count: int,
        threads: int, prefix: str) -> dict[str, Any]:
    from urllib.parse import quote

    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, context=context or None,
                            client_configuration=cfg, persist_config=False)
    cfg.retries = False
    cfg.connection_pool_maxsize = max(threads, 1)
    api = client.ApiClient(cfg)
    _, url, headers, _, _ = api.param_serialize(
        method="POST", resource_path=f"/api/v1/namespaces/{quote(namespace, safe='')}/pods",
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"])
    pool = api.rest_client.pool_manager
    indexes = itertools.count()          # next() on it is atomic under the GIL
    lock = threading.Lock()
    tally = {"requests": 0, "retries": 0, "created": 0}
    errors: list[str] = []

    def worker() -> None:
        requests = retries = created = 0
        meta = pod.get("metadata") or {}
        while True:
            i = next(indexes)
            if i >= count:
                break
            body = json.dumps({**pod, "metadata": {**meta, "name": f"{prefix}-{i}"}},
                              separators=(",", ":")).encode()
            for attempt in range(20):
                requests += 1
                resp = pool.request("POST", url, body=body, headers=headers, timeout=60)
                if resp.status in (429, 500, 502, 503, 504) and attempt < 19:
                    retries += 1
                    time.sleep(float(resp.headers.get("Retry-After") or 0.2))
                    continue
                if resp.status == 201:
                    json.loads(resp.data)
                    created += 1
                else:
                    with lock:
                        errors.append(f"HTTP {resp.status}: {resp.data[:200]!r}")
                break
        with lock:
            tally["requests"] += requests
            tally["retries"] += retries
            tally["created"] += created

    workers = [threading.Thread(target=worker, name=f"limit-{n}") for n in range(threads)]
    cpu0, t0 = _cpu(), time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seconds, cpu = time.monotonic() - t0, _cpu() - cpu0
    api.close()
    return {"pods": tally["created"], "seconds": seconds, "cpu_seconds": cpu,
            "requests": tally["requests"], "retries": tally["retries"], "threads": threads,
            "errors": len(errors), "first_error": errors[0] if errors else "",
            "pid": os.getpid()}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", default="")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--pod-file", required=True, help="the pod (JSON) to create copies of")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--prefix", default="bench-limit")
    args = parser.parse_args(argv)
    with open(args.pod_file) as fh:
        pod = json.load(fh)
    print(json.dumps(run(args.kubeconfig, args.context, args.namespace, pod, args.count,
                         args.threads, args.prefix)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
