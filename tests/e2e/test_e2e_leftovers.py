"""Issue 15's "Done when" items that pod mode can show today, end to end through the real kgahp:

- cancel leaves nothing: no pod and no Secret, whether the job was idle (unschedulable), running,
  or already finished, with input files and a proxy shipped as Secrets (api transfer mode);
- a pod that ends and is deleted while kgahp is down is never a false result: the tracking
  finalizer keeps it until kgahp, back up, has read it, so the job is Completed with the exit
  code its process really had and its outputs are in Iwd.
"""

from __future__ import annotations

import time
from typing import Any

from harness import Gahp, managed_objects, sh, sleeps, succeeds, wait_until

from kgahp.model import COMPLETED, IDLE, REMOVED, RUNNING


def _objects(gahp: Gahp, kind: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in managed_objects(gahp.sim, kind))


def test_cancel_leaves_no_pod_and_no_secret(make_gahp: Any) -> None:
    gahp = make_gahp(TRANSFER_MODE="api", POD_RETENTION="600")
    (gahp.iwd / "in.txt").write_text("input\n")
    (gahp.iwd / "proxy.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n")
    files = {"TransferInput": "in.txt", "x509userproxy": str(gahp.iwd / "proxy.pem")}
    idle = gahp.submit("leftover_idle_1.0", **succeeds(), GPUNumber=1, **files)  # never placed
    running = gahp.submit("leftover_run_1.0", **sleeps(), **files)
    done = gahp.submit("leftover_done_1.0", **succeeds(), **files)
    gahp.wait_status(running, {RUNNING})
    gahp.wait_status(done, {COMPLETED})
    assert gahp.status(idle)[0] == IDLE
    wait_until(lambda: len(_objects(gahp, "secrets")) >= 4, 30,
               "the idle and running jobs' input and proxy Secrets")
    for job_id in (idle, running, done):
        assert gahp.driver.cancel(job_id) == (0, "No error")
    wait_until(lambda: _objects(gahp, "pods") == [] and _objects(gahp, "secrets") == [], 60,
               "no pod and no Secret after the cancels")
    for job_id in (idle, running):
        assert gahp.wait_status(job_id, {REMOVED}, timeout=30)[0] == REMOVED
    gahp.restart()                                   # and a new instance finds nothing to redo
    assert _objects(gahp, "pods") == [] and _objects(gahp, "secrets") == []


def test_a_pod_that_ends_and_is_deleted_while_kgahp_is_down_is_never_a_false_result(
        make_gahp: Any) -> None:
    """The tracking finalizer holds the deleted pod (deletionTimestamp set, its last status and
    log kept) until kgahp, back up, has read it: its real exit code and outputs."""
    from kubernetes import client

    gahp = make_gahp(TRANSFER_MODE="api")
    job_id = gahp.submit("leftover_down_1.0", **sh("sleep 2; echo made > result.txt; "
                                                     "echo out; exit 4",
                                                     TransferOutput="result.txt"))
    gahp.wait_status(job_id, {RUNNING})
    gahp.driver.kill()                               # kill -9: nothing of kgahp runs now
    core = client.CoreV1Api(gahp.sim.api_client())
    (pod,) = managed_objects(gahp.sim, "pods")
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    assert pod["metadata"]["finalizers"] == ["kgahp.htcondor.org/collect"]

    def ended() -> bool:
        return core.read_namespaced_pod(name, namespace).status.phase in ("Succeeded", "Failed")

    wait_until(ended, 60, "the job's process to end while kgahp is down")
    # deleted well after it ended: the rule wants the end more than a second before the
    # deletion, and both times are whole seconds, so 1.5 s could read as 1 (it did, under load)
    time.sleep(2.5)
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)   # GC, a person, ...
    held = core.read_namespaced_pod(name, namespace)  # still there: the finalizer holds it
    assert held.metadata.deletion_timestamp is not None
    gahp.start()
    status, ad = gahp.wait_status(job_id, lambda s: s not in (IDLE, RUNNING), timeout=60)
    assert status == COMPLETED, ad
    assert ad.eval("ExitCode") == 4, ad              # the real exit code
    assert (gahp.iwd / "result.txt").read_text() == "made\n"
    assert (gahp.iwd / "leftover_down_1.0.out").read_text() == "out\n"
    again, _ = gahp.status(job_id)
    assert again == status                           # a settled answer, not a flicker
    wait_until(lambda: not managed_objects(gahp.sim, "pods"), 30,
               "the pod to go once kgahp removed its finalizer")
