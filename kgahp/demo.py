"""`kgahp demo`: three jobs through the real kgahp executable, driven over the GAHP protocol
exactly as the gridmanager drives it, against the built-in simulated cluster. Needs no cluster
and no HTCondor: one job succeeds, one fails with an exit code, one is held for a bad image.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from typing import Optional

import classad2
import yaml

from kgahp.testing import GahpDriver, condor_env

STATUS_NAMES = {1: "IDLE", 2: "RUNNING", 3: "REMOVED", 4: "COMPLETED", 5: "HELD"}

HELLO = """\
#!/bin/sh
# a payload: reads its input and stdin, writes stdout, stderr and an output file
echo "hello from $(hostname) in $(pwd); args: $*"
echo "input says: $(cat greeting.txt)"
echo "stdin says: $(cat)"
echo "this line goes to stderr" >&2
echo "result: 42" > result.txt
"""

FAIL = """\
#!/bin/sh
echo "about to fail" >&2
exit 3
"""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _ad(iwd: str, job_dir: str, cmd: str, image: str, **extra: object) -> str:
    attrs: dict[str, object] = {
        "Cmd": cmd, "Iwd": iwd, "JobDirectory": job_dir, "In": "/dev/null",
        "Out": f"{job_dir}.out", "Err": f"{job_dir}.err", "GridResource": "batch kubernetes",
        "gridtype": "kubernetes", "RequestMemory": 128, "KubernetesImage": image,
    }
    attrs.update(extra)
    return repr(classad2.ClassAd(attrs))


def _describe_pod(sim: object, namespace: str, job: str) -> str:
    from kubernetes import client

    core = client.CoreV1Api(sim.api_client())  # type: ignore[attr-defined]
    pods = core.list_namespaced_pod(namespace, label_selector=f"kgahp.htcondor.org/job={job}")
    pod = core.api_client.sanitize_for_serialization(pods.items[-1])
    name = pod["metadata"]["name"]
    spec = pod["spec"]
    main = next(c for c in spec["containers"] if c["name"] == "job")
    summary = {
        "metadata": {"name": name, "namespace": namespace,
                     "labels": pod["metadata"].get("labels")},
        "spec": {
            "initContainers": [c["name"] for c in spec.get("initContainers") or []],
            "containers": [{"name": "job", "image": main["image"],
                            "resources": main.get("resources"),
                            "securityContext": main.get("securityContext")}],
            "activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
            "volumes": [v["name"] for v in spec.get("volumes") or []],
        },
    }
    return yaml.safe_dump(summary, sort_keys=False)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kgahp demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo's directory")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from kgahp_sim import SimCluster, SimConfig

    workdir = tempfile.mkdtemp(prefix="kgahp-demo-")
    iwd = os.path.join(workdir, "jobs")
    os.makedirs(iwd)
    for name, text in (("hello.sh", HELLO), ("fail.sh", FAIL)):
        path = os.path.join(iwd, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o755)
    with open(os.path.join(iwd, "greeting.txt"), "w") as fh:
        fh.write("files travel both ways\n")
    with open(os.path.join(iwd, "stdin.txt"), "w") as fh:
        fh.write("stdin arrives too\n")

    _say("kgahp demo: starting the simulated Kubernetes cluster (real HTTP, real processes)")
    sim = SimCluster(SimConfig(nodes=2, workdir=os.path.join(workdir, "cluster"))).start()
    kubeconfig = sim.write_kubeconfig(os.path.join(workdir, "kubeconfig"))
    log_file = os.path.join(workdir, "KGahpLog")
    env = condor_env({
        "KUBECONFIG": kubeconfig, "STATE_DIR": os.path.join(workdir, "state"),
        "LOG": log_file, "DEBUG": "INFO", "DEFAULT_IMAGE": "busybox:1.36",
        "IMAGE_PULL_GRACE": "3", "POD_RETENTION": "30",
    })
    _say(f"  API server {sim.url}; kubeconfig {kubeconfig}")
    _say("starting kgahp the way the gridmanager does (no arguments, pipes, CR LF)")
    driver = GahpDriver(env=env)
    try:
        banner_ms = (driver.banner_seconds or 0) * 1000
        _say(f"  banner after {banner_ms:.0f} ms: {' '.join(driver.banner)}")
        _say(f"  COMMANDS: {' '.join(driver.handshake())}")
        code, msg = driver.ping()
        _say(f"  BLAH_PING -> {code} {msg}")
        jobs = {
            "hello": _ad(iwd, "demo_hello_1.0", os.path.join(iwd, "hello.sh"), "busybox:1.36",
                         Arguments="'two words' plain", TransferInput="greeting.txt",
                         TransferOutput="result.txt", In="stdin.txt",
                         Environment="GREETING=hi"),
            "fail": _ad(iwd, "demo_fail_2.0", os.path.join(iwd, "fail.sh"), "busybox:1.36"),
            "badimage": _ad(iwd, "demo_badimage_3.0", os.path.join(iwd, "hello.sh"),
                            "sim.invalid/pull-error:v9"),
        }
        ids: dict[str, str] = {}
        _say("\nsubmitting three jobs (BLAH_JOB_SUBMIT)")
        for label, ad in jobs.items():
            code, msg, job_id = driver.submit(ad)
            _say(f"  {label:9s} -> {code} {msg} {job_id}")
            if code == 0:
                ids[label] = job_id
        if "hello" in ids:
            namespace, job = ids["hello"].split("/")[1:]
            _say("\nthe pod kgahp created for 'hello' (abridged):")
            _say(textwrap.indent(_describe_pod(sim, namespace, job), "  "))

        _say("polling BLAH_JOB_STATUS as the gridmanager does, printing each change")
        last: dict[str, int] = {}
        final: dict[str, list[str]] = {}
        deadline = time.monotonic() + args.timeout
        while len(final) < len(ids) and time.monotonic() < deadline:
            for label, job_id in ids.items():
                if label in final:
                    continue
                code, msg, status, ad_text = driver.status(job_id)
                status_text = ad_text
                if code != 0:
                    _say(f"  {label:9s} status error: {msg}")
                    continue
                if last.get(label) != status:
                    _say(f"  {label:9s} JobStatus {status} ({STATUS_NAMES.get(status, '?')})")
                    last[label] = status
                if status in (3, 4, 5):
                    final[label] = [str(status), status_text]
            time.sleep(0.5)

        _say("\nfinal status ads (what the gridmanager reads):")
        for label, (status_code, final_ad) in final.items():
            ad = classad2.parseOne(final_ad)
            interesting = {k: ad.eval(k) for k in ad.keys()
                           if k in ("ExitCode", "ExitBySignal", "HoldReasonCode", "HoldReason",
                                    "WorkerNode", "CpusProvisioned", "MemoryProvisioned")}
            _say(f"  {label:9s} JobStatus {status_code}: {interesting}")
        out = os.path.join(iwd, "demo_hello_1.0.out")
        if os.path.exists(out):
            _say(f"\nstdout of 'hello' landed in {out}:")
            with open(out) as fh:
                _say(textwrap.indent(fh.read(), "  | "))
            for extra in ("demo_hello_1.0.err", "result.txt"):
                path = os.path.join(iwd, extra)
                if os.path.exists(path):
                    with open(path) as fh:
                        _say(f"{extra}: {fh.read().strip()}")
        if args.keep:
            _say(f"kgahp's log: {log_file}")
        ok = (final.get("hello", ["?"])[0] == "4" and final.get("fail", ["?"])[0] == "4"
              and final.get("badimage", ["?"])[0] == "5")
        _say("\ndemo " + ("finished: success, exit code and hold as expected" if ok
                         else "did NOT produce the expected outcomes"))
        return 0 if ok else 1
    finally:
        exit_code = driver.close()
        _say(f"kgahp exited with {exit_code} on stdin EOF")
        sim.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            _say(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
