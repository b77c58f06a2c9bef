"""Issue 12, end to end: what the gridmanager reads when a pod is deleted by someone other than
kgahp (kubectl delete with its default or a short grace, a forced delete, a namespace deletion,
the Eviction API), after a cancel, and what a stopped GAHP leaves in the cluster.

Each test drives the real `kgahp` executable over the GAHP protocol against the simulator, whose
graceful deletion and eviction are pinned to the v1.36 recordings (23d2, 27*). A job is Completed
only when its own process ended: none of these may ever answer 4 or a Hold 12.
"""

from __future__ import annotations

import getpass
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import Gahp, managed_objects, wait_until
from kubernetes import client

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING
from kgahp.testing import condor_env


def _core(gahp: Gahp) -> client.CoreV1Api:
    return client.CoreV1Api(gahp.sim.api_client())


def _pod_of(gahp: Gahp, job_id: str, namespace: str = "default") -> dict:
    base = job_id.split("/")[2]
    pods = [p for p in gahp.pods(namespace) if p["metadata"]["name"].startswith(base)]
    assert pods, f"no pod for {job_id}"
    return max(pods, key=lambda p: p["metadata"]["name"])


def _watch_answers(gahp: Gahp, job_id: str, until_gone: Callable[[], bool],
                   timeout: float = 45.0) -> list[int]:
    """Poll status like the gridmanager until `until_gone()` and a few polls after; every
    answer seen, so a transient 4 (or 5) cannot hide between two looks."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    extra = 5
    while extra > 0:
        status, _ = gahp.status(job_id)
        seen.append(status)
        if until_gone():
            extra -= 1
        if time.monotonic() > deadline:
            raise AssertionError(f"{job_id}: pod still there; answers {seen[-20:]}")
        time.sleep(0.1)
    return seen


def _no_pod(gahp: Gahp, job_id: str, namespace: str = "default") -> Callable[[], bool]:
    base = job_id.split("/")[2]
    return lambda: not any(p["metadata"]["name"].startswith(base)
                           for p in managed_objects(gahp.sim, "pods", namespace))


def _assert_removed_for_good(gahp: Gahp, job_id: str, answers: list[int]) -> Any:
    assert COMPLETED not in answers and HELD not in answers, answers
    assert answers[-1] == REMOVED, answers
    # once 3, always 3: later polls and a restarted GAHP give the same first answer
    first = answers.index(REMOVED)
    assert set(answers[first:]) == {REMOVED}, answers
    status, ad = gahp.status(job_id)
    assert status == REMOVED
    assert "deleted by someone other than kgahp" in ad.eval("RemoveReason")
    assert "ExitBySignal" not in ad and "ExitCode" not in ad
    log = gahp.log.read_text()
    assert "finished: JobStatus 4" not in log and "hold 12" not in log
    return ad


@pytest.mark.parametrize("mode", ["none", "api"])
def test_kubectl_delete_with_default_grace_answers_removed(make_gahp, mode: str) -> None:
    gahp = make_gahp(TRANSFER_MODE=mode)
    job_id = gahp.submit(f"del_default_{mode}_1.0", KubernetesImage="sim.invalid/sleep")
    gahp.wait_status(job_id, {RUNNING})
    name = _pod_of(gahp, job_id)["metadata"]["name"]
    deleted = _core(gahp).delete_namespaced_pod(name, "default")   # as kubectl: no grace given
    assert deleted.metadata.deletion_grace_period_seconds == 30
    answers = _watch_answers(gahp, job_id, _no_pod(gahp, job_id))
    _assert_removed_for_good(gahp, job_id, answers)
    gahp.restart()
    assert gahp.status(job_id)[0] == REMOVED


def test_kubectl_delete_with_short_grace_answers_removed(gahp) -> None:
    job_id = gahp.submit("del_short_1.0", KubernetesImage="sim.invalid/slow-delete")
    gahp.wait_status(job_id, {RUNNING})
    name = _pod_of(gahp, job_id)["metadata"]["name"]
    _core(gahp).delete_namespaced_pod(name, "default", grace_period_seconds=2)
    answers = _watch_answers(gahp, job_id, _no_pod(gahp, job_id))
    _assert_removed_for_good(gahp, job_id, answers)


def test_forced_delete_answers_removed_with_reason(make_gahp) -> None:
    gahp = make_gahp(TRANSFER_MODE="api")
    job_id = gahp.submit("del_force_1.0", KubernetesImage="sim.invalid/sleep")
    gahp.wait_status(job_id, {RUNNING})
    name = _pod_of(gahp, job_id)["metadata"]["name"]
    _core(gahp).delete_namespaced_pod(name, "default", grace_period_seconds=0)
    answers = _watch_answers(gahp, job_id, _no_pod(gahp, job_id))
    _assert_removed_for_good(gahp, job_id, answers)


def test_pod_deleted_before_it_started_is_created_again(gahp) -> None:
    job_id = gahp.submit("del_unstarted_1.0", KubernetesImage="sim.invalid/ok:300ms",
                         GPUNumber=1)   # no node has a GPU: it stays Pending
    assert gahp.status(job_id)[0] == IDLE
    first = _pod_of(gahp, job_id)["metadata"]["name"]
    _core(gahp).delete_namespaced_pod(first, "default")
    wait_until(lambda: any(p["metadata"]["name"] != first for p in gahp.pods()), 20,
               "a new pod for the job")
    status, ad = gahp.status(job_id)
    assert status == IDLE and ad.eval("NumRestarts") == 1


def test_namespace_deletion_answers_removed(make_gahp) -> None:
    gahp = make_gahp(ALLOWED_NAMESPACES="default,doomed")
    _core(gahp).create_namespace({"metadata": {"name": "doomed"}})
    job_id = gahp.submit("del_ns_1.0", KubernetesImage="sim.invalid/sleep",
                         KubernetesNamespace="doomed")
    assert job_id.startswith("kubernetes/doomed/")
    gahp.wait_status(job_id, {RUNNING})
    _core(gahp).delete_namespace("doomed")
    answers = _watch_answers(gahp, job_id, _no_pod(gahp, job_id, "doomed"))
    _assert_removed_for_good(gahp, job_id, answers)


def test_eviction_api_is_a_disruption_the_job_runs_again(gahp) -> None:
    """kubectl drain uses the Eviction API: the pod is marked DisruptionTarget (27a2), so the
    cluster, not a person, ended it. Like a kubelet eviction, the job gets a new pod."""
    job_id = gahp.submit("evict_api_1.0", KubernetesImage="sim.invalid/sleep")
    gahp.wait_status(job_id, {RUNNING})
    name = _pod_of(gahp, job_id)["metadata"]["name"]
    _core(gahp).create_namespaced_pod_eviction(name, "default", {
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"}})
    answers: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answers.append(gahp.status(job_id)[0])
        names = {p["metadata"]["name"] for p in gahp.pods()}
        if name not in names and names:
            break
        time.sleep(0.1)
    assert COMPLETED not in answers and HELD not in answers and REMOVED not in answers, answers
    _, ad = gahp.wait_status(job_id, {RUNNING})
    assert ad.eval("NumRestarts") == 1
    assert _pod_of(gahp, job_id)["metadata"]["name"] != name


@pytest.mark.parametrize("mode", ["none", "api"])
def test_cancel_then_status_answers_removed(make_gahp, mode: str) -> None:
    gahp = make_gahp(TRANSFER_MODE=mode)
    job_id = gahp.submit(f"cancel_status_{mode}_1.0", KubernetesImage="sim.invalid/sleep")
    gahp.wait_status(job_id, {RUNNING})
    assert gahp.driver.cancel(job_id) == (0, "No error")
    answers = _watch_answers(gahp, job_id, _no_pod(gahp, job_id))
    assert set(answers) == {REMOVED}, answers
    _, ad = gahp.status(job_id)
    assert "cancelled" in ad.eval("RemoveReason")
    log = gahp.log.read_text()
    assert "finished: JobStatus" not in log and "hold 12" not in log
    gahp.restart()
    assert gahp.status(job_id)[0] == REMOVED


def _input_secrets(gahp: Gahp) -> list[str]:
    return [s["metadata"]["name"] for s in managed_objects(gahp.sim, "secrets")]


def test_gahp_stopped_right_after_its_last_job_leaves_no_secret(make_gahp) -> None:
    """The gridmanager stops the GAHP seconds after its last job: the finished pod stays for
    its retention, but its Secrets (inputs, proxy) go with the recorded result."""
    gahp = make_gahp(TRANSFER_MODE="api", POD_RETENTION="600")
    (gahp.iwd / "in.txt").write_text("input\n")
    (gahp.iwd / "proxy.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n")
    # the background deletion is slow (a busy API server): the exit must not leave it undone
    slow = gahp.sim.faults.add(method="DELETE", path=r"/secrets/", latency=5.0, times=1)
    job_id = gahp.submit("last_job_1.0", Cmd="/bin/true", KubernetesImage="busybox:1.36",
                         TransferInput="in.txt", x509userproxy=str(gahp.iwd / "proxy.pem"))
    _, ad = gahp.wait_status(job_id, {COMPLETED, HELD})
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    wait_until(lambda: slow.times == 0, 10, "the background Secret deletion to start")
    gahp.close()                                     # EOF right after the last answer
    assert _input_secrets(gahp) == []
    assert "-input, " in gahp.log.read_text()        # it had its inputs and its proxy
    assert gahp.pods()                               # the pod itself stays (retention)


def test_pods_past_retention_go_at_the_next_start(make_gahp) -> None:
    gahp = make_gahp(POD_RETENTION="3")
    job_id = gahp.submit("retained_1.0", KubernetesImage="sim.invalid/ok:200ms")
    gahp.wait_status(job_id, {COMPLETED})
    gahp.driver.kill()                               # gone before the retention ended
    time.sleep(3.5)
    assert gahp.pods()
    gahp.start()                                     # a new GAHP, no request for that job
    wait_until(lambda: gahp.pods() == [], 15, "the pod past its retention to go")


def test_pods_of_an_older_kgahp_with_the_old_default_label_are_taken_over(make_gahp) -> None:
    """Before issue 12 the default instance was the user name. After an upgrade the new GAHP
    takes over the jobs its gridmanager asks about (pod relabelled, record copied), and leaves
    the old-labelled pods of other jobs alone."""
    user = getpass.getuser()
    gahp = make_gahp(INSTANCE=user, _CONDOR_SCHEDD_NAME="schedd-a.example.org")
    mine = gahp.submit("legacy_mine_1.0", KubernetesImage="sim.invalid/sleep")
    theirs = gahp.submit("legacy_theirs_1.0", KubernetesImage="sim.invalid/sleep")
    gahp.wait_status(mine, {RUNNING})
    gahp.wait_status(theirs, {RUNNING})
    gahp.driver.kill()
    del gahp.knobs["INSTANCE"]                       # the upgrade: the new default applies
    gahp.start()
    status, _ = gahp.status(mine)
    assert status == RUNNING                         # answered from a read of the old pod

    def labels() -> dict[str, str]:
        return {p["metadata"]["labels"]["kgahp.htcondor.org/job"]:
                p["metadata"]["labels"]["kgahp.htcondor.org/instance"] for p in gahp.pods()}

    # the status only read; a reconcile worker takes the job over
    wait_until(lambda: labels()[mine.split("/")[2]] != user, 15, "the pod to be relabelled")
    assert labels()[theirs.split("/")[2]] == user
    assert gahp.driver.cancel(mine) == (0, "No error")
    assert gahp.status(mine)[0] == REMOVED
    assert any(p["metadata"]["name"].startswith(theirs.split("/")[2]) and
               not p["metadata"].get("deletionTimestamp") for p in gahp.pods())


def test_two_gahps_of_one_owner_in_one_namespace_leave_each_other_alone(make_gahp,
                                                                       tmp_path: Path) -> None:
    """Two schedds (or two CEs mapping to one account) share a namespace: each GAHP acts on
    its own pods only, with its own retention; `kgahp status --all-instances` sees both."""
    first = make_gahp(_CONDOR_SCHEDD_NAME="schedd-a.example.org", POD_RETENTION="600")
    second = make_gahp(_CONDOR_SCHEDD_NAME="schedd-b.example.org", POD_RETENTION="1")
    a = first.submit("owner_a_1.0", KubernetesImage="sim.invalid/ok:500ms")
    b = second.submit("owner_b_1.0", KubernetesImage="sim.invalid/ok:500ms")
    assert first.wait_status(a, {COMPLETED})[1].eval("ExitCode") == 0
    assert second.wait_status(b, {COMPLETED})[1].eval("ExitCode") == 0
    labels = {p["metadata"]["labels"]["kgahp.htcondor.org/job"]:
              p["metadata"]["labels"]["kgahp.htcondor.org/instance"] for p in first.pods()}
    assert len(set(labels.values())) == 2, labels
    # the second GAHP's short retention removes its own finished pod, never the first's
    wait_until(lambda: not any(p["metadata"]["name"].startswith(b.split("/")[2])
                               for p in first.pods()), 15, "the second GAHP's pod to go")
    time.sleep(1.5)
    assert any(p["metadata"]["name"].startswith(a.split("/")[2]) for p in first.pods())
    for gahp, other in ((first, b), (second, a)):
        assert other.split("/")[2] not in gahp.log.read_text()
    # the admin's view, as the first GAHP's owner on its schedd: its own jobs, or everyone's
    running = second.submit("owner_b_2.0", KubernetesImage="sim.invalid/sleep")
    second.wait_status(running, {RUNNING})
    env = condor_env({k: v for k, v in first.knobs.items() if not k.startswith("_CONDOR_")})
    env["_CONDOR_SCHEDD_NAME"] = first.knobs["_CONDOR_SCHEDD_NAME"]
    mine = subprocess.run([sys.executable, "-m", "kgahp", "status"], env=env,
                          capture_output=True, text=True, timeout=60)
    everyone = subprocess.run([sys.executable, "-m", "kgahp", "status", "--all-instances"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert mine.returncode == 0 and everyone.returncode == 0, mine.stderr + everyone.stderr
    assert a in mine.stdout and running not in mine.stdout
    assert a in everyone.stdout and running in everyone.stdout
