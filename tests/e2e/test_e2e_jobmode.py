"""Job mode end to end: the real kgahp executable with KGAHP_WORKLOAD = job (or a queue saying
`workload: job`), against the simulator's batch/v1 Job API and Job controller (pinned to the
v1.36 recordings 22*). Each attempt is one Job; the pod its controller makes is what status,
holds, outputs and recreation read; cancel and the retention take the Job, its pod and its
Secrets away; a restart adopts Jobs and pods without making a second attempt.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness import allocates_past_limit, exits, sleeps, succeeds, wait_until

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING
from kgahp.testing import condor_env

MANAGED = "app.kubernetes.io/managed-by=kgahp"


def jobs_of(sim: Any) -> list[dict]:
    from kubernetes import client

    batch = client.BatchV1Api(sim.api_client())
    return [batch.api_client.sanitize_for_serialization(j)
            for j in batch.list_job_for_all_namespaces(label_selector=MANAGED).items]


def secrets_of(sim: Any) -> list[dict]:
    from harness import managed_objects
    return managed_objects(sim, "secrets")


def base_of(job_id: str) -> str:
    return job_id.split("/")[2]


def mine(objs: list[dict], job_id: str) -> list[dict]:
    return [o for o in objs if o["metadata"]["name"].startswith(base_of(job_id) + "-")]


@pytest.fixture
def jgahp(sim: Any, make_gahp: Any) -> Any:
    sim.require_sim("job mode runs against the sim's Job controller here")
    return make_gahp(WORKLOAD="job")


def test_success_runs_as_one_job_whose_pod_carries_the_labels(jgahp):
    job_id = jgahp.submit("jm_ok_1.0", **succeeds(after=1))
    status, _ = jgahp.status(job_id)
    assert status in (IDLE, RUNNING)
    jgahp.wait_status(job_id, {RUNNING})
    _, ad = jgahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 0
    [job] = mine(jobs_of(jgahp.sim), job_id)
    assert job["metadata"]["name"] == base_of(job_id) + "-0"
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 0)
    assert spec["podReplacementPolicy"] == "Failed"
    [pod] = mine(jgahp.pods(), job_id)
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["metadata"]["labels"]["kgahp.htcondor.org/job"] == base_of(job_id)
    assert ad.eval("WorkerNode") == pod["spec"]["nodeName"]


def test_outputs_are_collected_from_the_jobs_pod(sim, make_gahp):
    sim.require_sim("job mode runs against the sim's Job controller here")
    g = make_gahp(WORKLOAD="job", TRANSFER_MODE="api")
    iwd = str(g.iwd)
    with open(f"{iwd}/in.txt", "w") as fh:
        fh.write("hello input\n")
    script = f"{iwd}/job.sh"
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\nsleep 2\ncat in.txt > result.txt\necho done\n")
    os.chmod(script, 0o755)
    job_id = g.submit("jm_files_1.0", Cmd=script, StageCmd=True, TransferInput="in.txt",
                      TransferOutput="result.txt", Out="job.out", Err="job.err")
    [secret, *_] = mine(secrets_of(g.sim), job_id)
    owner = secret["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Job" and owner["name"] == base_of(job_id) + "-0"
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert open(f"{iwd}/result.txt").read() == "hello input\n"
    assert open(f"{iwd}/job.out").read() == "done\n"
    # the job's own Secrets go once its result is recorded
    wait_until(lambda: not mine(secrets_of(g.sim), job_id), 30, "the job's Secrets deleted")


def test_exit_code_is_reported(jgahp):
    job_id = jgahp.submit("jm_exit_1.0", **exits(3))
    _, ad = jgahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 3
    assert ad.eval("ExitBySignal") is False
    assert len(mine(jobs_of(jgahp.sim), job_id)) == 1   # backoffLimit 0: no second pod
    assert len(mine(jgahp.pods(), job_id)) == 1


def test_oom_kill_holds_with_memory_limit(jgahp):
    job_id = jgahp.submit("jm_oom_1.0", **allocates_past_limit(100))
    _, ad = jgahp.wait_status(job_id, {HELD})
    assert ad.eval("HoldReasonCode") == 34
    assert "100Mi" in ad.eval("HoldReason")


def test_deadline_holds_47_even_when_the_job_controller_deletes_the_pod(sim, make_gahp):
    sim.require_sim("job mode runs against the sim's Job controller here")
    jgahp = make_gahp(WORKLOAD="job", POD_RETENTION="2")
    job_id = jgahp.submit("jm_deadline_1.0", **sleeps(), BatchRuntime=2)
    [job] = mine(jobs_of(jgahp.sim), job_id)
    assert job["spec"]["activeDeadlineSeconds"] == 2
    seen = jgahp.poll(job_id, 0.2, timeout=40)
    status, ad = seen[-1]
    assert status == HELD, [s for s, _ in seen]
    assert ad.eval("HoldReasonCode") == 47
    assert REMOVED not in [s for s, _ in seen]
    assert "activeDeadlineSeconds" in ad.eval("HoldReason")
    # the Job (whose pod may be gone already) goes after the retention, its result kept
    wait_until(lambda: not mine(jobs_of(jgahp.sim), job_id), 30, "the held job's Job deleted")
    assert jgahp.status(job_id)[0] == HELD


def test_image_pull_error_holds_35_after_grace(jgahp):
    job_id = jgahp.submit("jm_pull_1.0", KubernetesImage="sim.invalid/pull-error")
    status, _ = jgahp.status(job_id)
    assert status == IDLE
    _, ad = jgahp.wait_status(job_id, {HELD}, timeout=30)
    assert ad.eval("HoldReasonCode") == 35
    assert "sim.invalid/pull-error" in ad.eval("HoldReason")


def test_eviction_recreates_as_a_new_job(jgahp):
    job_id = jgahp.submit("jm_evict_1.0", KubernetesImage="sim.invalid/evict:301ms")
    _, ad = jgahp.wait_status(job_id, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    assert ad.eval("NumRestarts") == 1
    names = {j["metadata"]["name"] for j in mine(jobs_of(jgahp.sim), job_id)}
    assert base_of(job_id) + "-1" in names and base_of(job_id) + "-2" not in names


def test_cancel_leaves_no_job_pod_or_secret(sim, make_gahp):
    sim.require_sim("job mode runs against the sim's Job controller here")
    g = make_gahp(WORKLOAD="job", TRANSFER_MODE="api")
    with open(f"{g.iwd}/in.txt", "w") as fh:
        fh.write("x\n")
    running = g.submit("jm_cancel_run_1.0", **sleeps(), TransferInput="in.txt")
    idle = g.submit("jm_cancel_idle_1.0", **succeeds(), GPUNumber=1)   # never scheduled
    g.wait_status(running, {RUNNING})
    assert mine(secrets_of(g.sim), running)
    for job_id in (running, idle):
        assert g.driver.cancel(job_id) == (0, "No error")
    wait_until(lambda: not jobs_of(g.sim) and not g.pods() and not secrets_of(g.sim), 30,
               "no Job, pod or Secret left")
    for job_id in (running, idle):
        assert g.status(job_id)[0] == REMOVED


def test_kill_9_and_restart_adopts_jobs_and_pods(jgahp):
    running = jgahp.submit("jm_crash_run_1.0", **sleeps(4))
    jgahp.wait_status(running, {RUNNING})
    jgahp.driver.kill()
    jgahp.start()
    # the gridmanager resubmits what it never saw answered, and polls the rest
    assert jgahp.submit("jm_crash_run_1.0", **sleeps(4)) == running
    _, ad = jgahp.wait_status(running, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0 and ad.eval("NumRestarts") == 0
    assert [j["metadata"]["name"] for j in mine(jobs_of(jgahp.sim), running)] == \
        [base_of(running) + "-0"]
    assert len(mine(jgahp.pods(), running)) == 1


def test_kill_9_between_job_and_pod_makes_no_duplicate(jgahp):
    """Killed right after the submit (the Job may not have its pod yet): the restarted GAHP
    answers from the Job, a repeated submit adopts it, and one pod runs."""
    job_id = jgahp.submit("jm_crash_early_1.0", **succeeds(after=1))
    jgahp.driver.kill()
    jgahp.start()
    status, _ = jgahp.status(job_id)
    assert status in (IDLE, RUNNING, COMPLETED)
    assert jgahp.submit("jm_crash_early_1.0", **succeeds(after=1)) == job_id
    _, ad = jgahp.wait_status(job_id, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    assert len(mine(jobs_of(jgahp.sim), job_id)) == 1
    assert len(mine(jgahp.pods(), job_id)) == 1


# ---- Kueue (the sim's stand-in of its batch/v1 Job integration)

@pytest.fixture
def kueue_jgahp(sim: Any, make_gahp: Any, tmp_path: Path) -> Any:
    sim.require_sim("runs the sim's Kueue stand-in")
    sim.config.kueue_queues = {"lq-j": {"pods": "1"}}      # one admitted Job at a time
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  kj: {kueueQueue: lq-j, workload: job}\n")
    return make_gahp(QUEUE_CONFIG=str(queues))


def test_kueue_suspended_job_is_idle_waiting_for_quota_then_runs(kueue_jgahp):
    g = kueue_jgahp
    first = g.submit("jmk_a_1.0", KubernetesImage="sim.invalid/sleep", Queue="kj")
    g.wait_status(first, {RUNNING})
    proxy = g.iwd / "b.proxy"
    proxy.write_text("PROXY-ONE\n")
    proxy.chmod(0o600)
    second = g.submit("jmk_b_1.0", KubernetesImage="sim.invalid/ok:300ms", Queue="kj",
                      x509userproxy=str(proxy))
    [job] = mine(jobs_of(g.sim), second)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lq-j"
    assert job["spec"]["suspend"] is True        # Kueue's webhook: suspended until admitted
    assert not mine(g.pods(), second)
    code, _msg, status, _ad = g.driver.status(second)
    assert (code, status) == (0, IDLE)
    out = subprocess.run([sys.executable, "-m", "kgahp", "status"], env=condor_env(g.knobs),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if second in line)
    assert "job/" in row and "waiting for quota in LocalQueue lq-j" in row
    assert g.status(second)[0] == IDLE and not mine(g.pods(), second)
    # a proxy renewed while the Job waits in the queue reaches its Secret (owned by the Job)
    proxy.write_text("PROXY-TWO\n")
    assert g.driver.refresh_proxy(second, str(proxy)) == (0, "Proxy renewed")
    [secret] = [x for x in mine(secrets_of(g.sim), second) if x["metadata"]["name"].endswith(
        "-proxy")]
    assert base64.b64encode(b"PROXY-TWO\n").decode() in secret["data"].values()
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert g.driver.cancel(first) == (0, "No error")      # its quota goes back to the queue
    seen = g.poll(second, 0.2, timeout=60)
    assert seen[-1][0] == COMPLETED and seen[-1][1].eval("ExitCode") == 0
    assert RUNNING in [s for s, _ in seen]
    assert seen[-1][1].eval("NumRestarts") == 0


def assert_replaced_once(g, job_id: str) -> None:
    """After a Kueue preemption: attempt 1's Job runs (NumRestarts 1), no end was ever
    answered on the way, and exactly one pod of the job is live."""
    seen: list[int] = []

    def replaced() -> bool:
        status, ad = g.status(job_id)
        seen.append(status)
        names = {j["metadata"]["name"] for j in mine(jobs_of(g.sim), job_id)}
        return status == RUNNING and ad.eval("NumRestarts") == 1 and \
            names == {base_of(job_id) + "-1"}

    wait_until(replaced, 60, "a new Job running after the preemption")
    assert not {COMPLETED, REMOVED, HELD} & set(seen), seen
    time.sleep(0.5)
    assert len([p for p in mine(g.pods(), job_id)
                if not p["metadata"].get("deletionTimestamp")]) == 1


def test_kueue_preempted_job_is_recreated_and_never_completed(kueue_jgahp):
    g = kueue_jgahp
    job_id = g.submit("jmk_p_1.0", KubernetesImage="sim.invalid/sleep", Queue="kj")
    g.wait_status(job_id, {RUNNING})
    g.sim.kueue_preempt_job("default", base_of(job_id) + "-0")
    assert_replaced_once(g, job_id)


def test_multikueue_job_is_left_to_multikueue_and_idle_until_dispatched(sim, make_gahp,
                                                                        tmp_path):
    sim.require_sim("runs the sim's Kueue stand-in (no worker cluster: never dispatched)")
    sim.config.kueue_queues = {"lq-m": {"pods": "4"}}
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  mk: {kueueQueue: lq-m, multikueue: true}\n")
    g = make_gahp(QUEUE_CONFIG=str(queues))
    job_id = g.submit("jmm_1.0", **succeeds(), Queue="mk")
    [job] = mine(jobs_of(g.sim), job_id)
    assert job["spec"]["managedBy"] == "kueue.x-k8s.io/multikueue"
    assert job["spec"]["suspend"] is True
    time.sleep(1.0)     # the local Job controller leaves it alone (22k2): no pod here
    assert not mine(g.pods(), job_id)
    assert g.status(job_id)[0] == IDLE
    assert g.driver.cancel(job_id) == (0, "No error")
    wait_until(lambda: not jobs_of(g.sim), 20, "the Job deleted")
    assert g.status(job_id)[0] == REMOVED


@pytest.mark.parametrize("policy", ["hold", "remove"])
def test_eviction_under_hold_or_remove_makes_no_second_job(sim, make_gahp, policy):
    """KGAHP_DISRUPTION_POLICY in job mode: the evicted attempt's answer is HELD 26 (hold) or
    IDLE with the reason in ExitReason (remove), never a completion, and no Job for a next
    attempt; a restart gives the same answer."""
    sim.require_sim("job mode runs against the sim's Job controller here")
    g = make_gahp(WORKLOAD="job", DISRUPTION_POLICY=policy)
    job_id = g.submit(f"jm_evict_{policy}_1.0", KubernetesImage="sim.invalid/evict:301ms")
    want = HELD if policy == "hold" else IDLE
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1] != want or RUNNING not in seen:
        assert time.monotonic() < deadline, seen[-20:]
        seen.append(g.status(job_id)[0])
        time.sleep(0.1)
    assert not {COMPLETED, REMOVED} & set(seen), seen
    _, ad = g.status(job_id)
    if policy == "hold":
        assert ad.eval("HoldReasonCode") == 26
        assert "KGAHP_DISRUPTION_POLICY = hold" in ad.eval("HoldReason")
    else:
        assert "KGAHP_DISRUPTION_POLICY = remove" in ad.eval("ExitReason")
    time.sleep(2.0)
    assert {j["metadata"]["name"] for j in mine(jobs_of(g.sim), job_id)} <= {
        base_of(job_id) + "-0"}
    g.restart()
    assert g.status(job_id)[0] == want
    assert not any(j["metadata"]["name"] == base_of(job_id) + "-1"
                   for j in mine(jobs_of(g.sim), job_id))


# ---- changed while kgahp was down (the job-mode twins of tests/e2e/test_e2e_disruption.py)

def test_job_deleted_while_running_and_kgahp_down_is_removed_never_completed(jgahp):
    """Someone deleted the running attempt's Job (its pod goes with it) while kgahp was killed:
    the restarted kgahp answers Removed with the reason, never a completion."""
    from kubernetes import client

    job_id = jgahp.submit("jm_down_del_1.0", **sleeps())
    jgahp.wait_status(job_id, {RUNNING})
    jgahp.driver.kill()
    client.BatchV1Api(jgahp.sim.api_client()).delete_namespaced_job(
        base_of(job_id) + "-0", "default", propagation_policy="Background")
    wait_until(lambda: not mine(jobs_of(jgahp.sim), job_id), 30, "the Job to go")
    wait_until(lambda: all(p["metadata"].get("deletionTimestamp") and p["status"].get("phase")
                           in ("Succeeded", "Failed") for p in mine(jgahp.pods(), job_id)),
               30, "its pod deleted and stopped")
    jgahp.start()
    assert_removed_naming_the_deleted_job(jgahp, job_id)
    assert not mine(jobs_of(jgahp.sim), job_id)        # no second attempt


def assert_removed_naming_the_deleted_job(g, job_id: str) -> None:
    """The job ends Removed (never Completed on the way, no exit code), the reason names the
    deleted Job, and its pod goes once kgahp releases its finalizer."""
    seen: list[int] = []

    def answered() -> bool:
        seen.append(g.status(job_id)[0])
        return seen[-1] not in (IDLE, RUNNING)

    wait_until(answered, 60, "an answer for the deleted Job")
    status, ad = g.status(job_id)
    assert status == REMOVED, (seen, ad)
    assert COMPLETED not in seen, seen
    assert "ExitCode" not in ad
    assert_names_the_deleted_job(str(ad.get("RemoveReason")), job_id)
    wait_until(lambda: not mine(g.pods(), job_id), 30, "the pod to go (finalizer released)")


def assert_names_the_deleted_job(reason: str, job_id: str) -> None:
    """The RemoveReason says the Job (namespace/name) was deleted by someone else, not just
    its pod: the pod went by propagation."""
    job = f"default/{base_of(job_id)}-0"
    assert reason.startswith(f"Job {job} was deleted by someone other than kgahp"), reason
    assert "did not finish on its own" in reason and "not collected" in reason, reason


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_job_deleted_while_running_is_removed_naming_the_job(jgahp, propagation):
    """Someone deletes the running attempt's Job while kgahp runs (kubectl delete job: the
    garbage collector deletes its pod, at once or before the Job goes): Removed, the reason
    names the Job, never a completion and no second attempt."""
    from kubernetes import client

    job_id = jgahp.submit(f"jm_up_del_{propagation.lower()}_1.0", **sleeps())
    jgahp.wait_status(job_id, {RUNNING})
    client.BatchV1Api(jgahp.sim.api_client()).delete_namespaced_job(
        base_of(job_id) + "-0", "default", propagation_policy=propagation)
    assert_removed_naming_the_deleted_job(jgahp, job_id)
    time.sleep(1.0)
    assert not mine(jobs_of(jgahp.sim), job_id)        # no second attempt
    assert jgahp.status(job_id)[0] == REMOVED


def test_kueue_preempted_job_while_kgahp_down_is_recreated_never_completed(kueue_jgahp):
    """Kueue preempted (suspended) the running attempt's Job while kgahp was killed: the
    restarted kgahp runs a new attempt, with one live pod, and never answers an end."""
    g = kueue_jgahp
    job_id = g.submit("jmk_down_p_1.0", KubernetesImage="sim.invalid/sleep", Queue="kj")
    g.wait_status(job_id, {RUNNING})
    (first,) = mine(g.pods(), job_id)
    g.driver.kill()
    g.sim.kueue_preempt_job("default", base_of(job_id) + "-0")
    # (Kueue may admit the suspended Job again at once, and its controller make a new pod)
    wait_until(lambda: all(p["metadata"].get("deletionTimestamp") for p in mine(
        g.pods(), job_id) if p["metadata"]["uid"] == first["metadata"]["uid"]), 30,
        "the Job controller to delete the preempted pod")
    g.start()
    assert_replaced_once(g, job_id)
    assert g.status(job_id)[0] == RUNNING
