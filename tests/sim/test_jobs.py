"""batch/v1 Jobs in the sim (kgahp_sim.jobs), pinned to tests/data/k8s-recordings-v1.36/22*:
the API answers are replayed (22a, 22k, 22k2, 22k3, 22k4, 22k5, 22m-22m9, 22n2, 22n3) and the
controller's behaviour is compared with what the real job controller did (22b-22j5, 22l)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from harness import wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_recordings_replay import (
    Replayer,
    assert_same_answer,
    assert_same_object,
    body_of,
    load,
)

NS = "rec36-jobs"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"


@pytest.fixture
def jobs(sim: Any) -> Replayer:
    sim.require_sim("the replay recreates recorded state with fixed names")
    replay = Replayer(sim)
    replay.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": NS}})
    return replay



def _job(replay: Replayer, name: str) -> dict | None:
    resp = replay.send({"method": "GET", "path": f"{JOBS}/{name}", "headers": {}}, body=None,
                       query={})
    data = resp.read()
    return body_of(data) if resp.status == 200 else None


def _pods(replay: Replayer, job: str) -> list[dict]:
    resp = replay.send({"method": "GET", "path": f"/api/v1/namespaces/{NS}/pods",
                        "headers": {}}, body=None,
                       query={"labelSelector": f"batch.kubernetes.io/job-name={job}"})
    return body_of(resp.read())["items"]


def assert_same_job(replay: Replayer, data: bytes, rec: dict) -> None:
    """The object as recorded, the recorded Job's uid (in labels and selector) mapped to ours."""
    replay.uids[rec["response"]["body"]["metadata"]["uid"]] = body_of(data)["metadata"]["uid"]
    assert_same_object(data, rec, replay)


def _spec(image: str, **spec: Any) -> dict:
    return {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "main", "image": image}]}}, **spec}


def _create(replay: Replayer, name: str, image: str, **spec: Any) -> dict:
    return replay.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                                "metadata": {"name": name}, "spec": _spec(image, **spec)})


def _conditions(job: dict) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", ""))
            for c in (job.get("status") or {}).get("conditions") or ()]


def _recorded_conditions(name: str) -> list[tuple[str, str, str]]:
    return _conditions(load(name)["response"]["body"])


# ----- the API ----------------------------------------------------------------------------------
def test_22a_create_is_defaulted_as_recorded(jobs):
    resp, data, rec = jobs.exchange("22a")
    assert_same_answer(resp, data, rec)
    assert_same_job(jobs, data, rec)


@pytest.mark.parametrize("case", ["22m", "22m2", "22m3", "22m4", "22m5", "22m6", "22m7", "22m8",
                                  "22m9", "22k5"])
def test_22m_validation(jobs, case):
    resp, data, rec = jobs.exchange(case)
    assert_same_answer(resp, data, rec)
    if resp.status == 201:
        assert_same_job(jobs, data, rec)


def test_22k_managed_by_another_controller_is_left_alone(jobs):
    resp, data, rec = jobs.exchange("22k")
    assert_same_answer(resp, data, rec)
    assert_same_job(jobs, data, rec)
    time.sleep(1.0)
    resp, data, rec = jobs.exchange("22k2")
    assert_same_job(jobs, data, rec)
    assert _pods(jobs, "rec36-job-managedby") == []
    resp, data, rec = jobs.exchange("22k3")
    assert_same_answer(resp, data, rec)
    resp, data, rec = jobs.exchange("22k4")
    assert resp.status == 200
    assert body_of(data)["status"] == rec["response"]["body"]["status"]


def test_22n_immutable_fields(jobs):
    _create(jobs, "rec36-job-immut", "sim.invalid/sleep")
    resp, data, rec = jobs.exchange("22n3")
    assert_same_answer(resp, data, rec)
    resp, data, rec = jobs.exchange("22n2")
    got = body_of(data)
    assert resp.status == rec["response"]["status"] == 422
    assert got["reason"] == "Invalid"
    assert [c["field"] for c in got["details"]["causes"]] == ["spec.template"]


# ----- the controller ---------------------------------------------------------------------------
def test_22c_22d_success_pod_and_conditions(jobs):
    _create(jobs, "rec36-job-ok", "sim.invalid/ok:1s", backoffLimit=0,
            podReplacementPolicy="Failed")
    pod = wait_until(lambda: next(iter(_pods(jobs, "rec36-job-ok")), None))
    want = load("22c")["response"]["body"]["metadata"]
    assert pod["metadata"]["generateName"] == "rec36-job-ok-"
    assert set(pod["metadata"]["labels"]) == set(want["labels"])
    assert pod["metadata"]["finalizers"] == want["finalizers"]
    ref = pod["metadata"]["ownerReferences"][0]
    assert {k: v for k, v in ref.items() if k != "uid"} == {
        k: v for k, v in want["ownerReferences"][0].items() if k != "uid"}
    job = wait_until(lambda: (j := _job(jobs, "rec36-job-ok")) and _conditions(j) and j)
    assert _conditions(job) == _recorded_conditions("22d")
    assert job["status"]["succeeded"] == 1 and "completionTime" in job["status"]
    assert list(job["status"]) == list(load("22d")["response"]["body"]["status"])
    # the tracking finalizer goes once the pod is counted (22c2)
    pod = wait_until(lambda: (p := _pods(jobs, "rec36-job-ok")) and not p[0]["metadata"].get(
        "finalizers") and p[0])
    assert pod["status"]["phase"] == "Succeeded"


def test_22e_backoff_limit_and_retries(jobs):
    _create(jobs, "rec36-job-fail", "sim.invalid/exit3:200ms", backoffLimit=1)
    job = wait_until(lambda: (j := _job(jobs, "rec36-job-fail")) and _conditions(j) and j)
    assert _conditions(job) == _recorded_conditions("22e")
    assert job["status"]["failed"] == 2                 # one retry under backoffLimit 1
    assert len(_pods(jobs, "rec36-job-fail")) == 2


def test_22f_deadline_fails_the_job_and_stops_its_pod(jobs):
    _create(jobs, "rec36-job-deadline", "sim.invalid/sleep", backoffLimit=0,
            activeDeadlineSeconds=2)
    job = wait_until(lambda: (j := _job(jobs, "rec36-job-deadline")) and _has_failed(j) and j)
    assert _conditions(job) == _recorded_conditions("22f")
    assert job["status"]["failed"] == 1
    pods = _pods(jobs, "rec36-job-deadline")
    assert not pods or (len(pods) == 1 and pods[0]["metadata"].get("deletionTimestamp"))


def _has_failed(job: dict) -> bool:
    return any(c[0] == "Failed" for c in _conditions(job))


def test_22j_suspend_then_resume(jobs):
    jobs.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                       "metadata": {"name": "rec36-job-suspend"},
                       "spec": _spec("sim.invalid/ok:300ms", suspend=True)})
    job = wait_until(lambda: (j := _job(jobs, "rec36-job-suspend")) and _conditions(j) and j)
    assert _conditions(job) == [("Suspended", "True", "JobSuspended")]
    time.sleep(0.5)
    assert _pods(jobs, "rec36-job-suspend") == []
    rec = load("22j3")
    resp = jobs.send(rec["request"])
    assert resp.status == 200
    job = wait_until(lambda: (j := _job(jobs, "rec36-job-suspend")) and any(
        c[0] == "Complete" for c in _conditions(j)) and j)
    assert _conditions(job) == _recorded_conditions("22j4")


def _suspend(replay: Replayer, name: str, value: bool) -> None:
    resp = replay.send({"method": "PATCH", "path": f"{JOBS}/{name}", "headers": {
        "Content-Type": "application/merge-patch+json"}}, body={"spec": {"suspend": value}},
        query={})
    assert resp.status == 200, resp.read()


def test_a_suspension_stops_the_pod_without_counting_it_as_failed(jobs):
    """Suspending a running Job (what Kueue does on eviction or preemption) deletes its pod,
    but the job controller releases its tracking finalizer before that delete (KEP-2307: its
    own deletions do not count towards the failures), so the pod is never counted as failed:
    resumed, a Job with backoffLimit 0 runs again instead of failing with
    BackoffLimitExceeded."""
    name = "rec36-job-preempted"
    _create(jobs, name, "sim.invalid/sleep", backoffLimit=0, podReplacementPolicy="Failed")
    first = wait_until(lambda: next((p for p in _pods(jobs, name)
                                if p["status"].get("phase") == "Running"), None))
    _suspend(jobs, name, True)
    going = wait_until(lambda: next((p for p in _pods(jobs, name) if p["metadata"]["uid"] ==
                                first["metadata"]["uid"] and p["metadata"].get(
                                    "deletionTimestamp")), None) or (
        not any(p["metadata"]["uid"] == first["metadata"]["uid"]
                for p in _pods(jobs, name)) and {"metadata": {}}))
    assert "batch.kubernetes.io/job-tracking" not in (going["metadata"].get("finalizers") or ())
    _suspend(jobs, name, False)
    second = wait_until(lambda: next((p for p in _pods(jobs, name) if p["metadata"]["uid"] !=
                                 first["metadata"]["uid"]), None))
    assert second["metadata"]["name"] != first["metadata"]["name"]
    job = _job(jobs, name)
    assert job is not None and not _has_failed(job)
    assert not job["status"].get("failed") and not (
        job["status"].get("uncountedTerminatedPods") or {}).get("failed")
    assert ("Suspended", "False", "JobResumed") in _conditions(job)


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_22ghi_delete_propagation(jobs, policy):
    name = f"rec36-job-del-{policy.lower()}"
    _create(jobs, name, "sim.invalid/sleep", backoffLimit=0)
    pod = wait_until(lambda: next((p for p in _pods(jobs, name)
                              if p["status"].get("phase") == "Running"), None))
    case = {"Background": "22g", "Foreground": "22h", "Orphan": "22i"}[policy]
    resp, data, rec = jobs.exchange(case)
    assert resp.status == 200
    answer = body_of(data)
    if policy == "Background":
        assert answer["kind"] == "Status" and answer["status"] == "Success"
    else:
        want = rec["response"]["body"]["metadata"]
        assert answer["metadata"]["finalizers"] == want["finalizers"]
        assert answer["metadata"]["deletionGracePeriodSeconds"] == 0
    wait_until(lambda: _job(jobs, name) is None)
    path = f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}"

    def pod_now() -> tuple[int, Any]:
        r = jobs.send({"method": "GET", "path": path, "headers": {}}, body=None, query={})
        return r.status, body_of(r.read())

    if policy == "Orphan":
        _, left = wait_until(lambda: (s := pod_now()) and not s[1]["metadata"].get(
            "ownerReferences") and s)
        assert left["status"]["phase"] == "Running" and not left["metadata"].get("finalizers")
    else:
        wait_until(lambda: pod_now()[0] == 404, timeout=40)


def test_22l_ttl_after_finished_deletes_job_and_pod(jobs):
    _create(jobs, "rec36-job-ttl", "sim.invalid/ok:100ms", ttlSecondsAfterFinished=1)
    wait_until(lambda: (j := _job(jobs, "rec36-job-ttl")) and _conditions(j))
    wait_until(lambda: _job(jobs, "rec36-job-ttl") is None, timeout=10)
    wait_until(lambda: _pods(jobs, "rec36-job-ttl") == [], timeout=10)


def test_pod_replacement_policy_failed_waits_for_the_old_pod(sim):
    """podReplacementPolicy Failed: no second pod while the first is still terminating."""
    sim.require_sim("watches the controller closely")
    batch = client.BatchV1Api(sim.api_client())
    core = client.CoreV1Api(sim.api_client())
    for name, policy in (("prp-failed", "Failed"), ("prp-terminating", "TerminatingOrFailed")):
        body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                "spec": {"backoffLimit": 2, "podReplacementPolicy": policy, "template": {
                    "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 3,
                             "containers": [{"name": "main", "image": "busybox:1.36",
                                             "command": ["sh", "-c",
                                                         "trap '' TERM; sleep 60"]}]}}}}
        batch.create_namespaced_job("default", body)
    for name in ("prp-failed", "prp-terminating"):
        first = wait_until(lambda n=name: next((p for p in core.list_namespaced_pod(
            "default", label_selector=f"job-name={n}").items if p.status.phase == "Running"),
            None))
        core.delete_namespaced_pod(first.metadata.name, "default")
    time.sleep(1.0)
    counts = {name: len(core.list_namespaced_pod("default",
                                                 label_selector=f"job-name={name}").items)
              for name in ("prp-failed", "prp-terminating")}
    assert counts == {"prp-failed": 1, "prp-terminating": 2}


def test_job_api_errors_are_kubernetes_errors(sim):
    sim.require_sim()
    batch = client.BatchV1Api(sim.api_client())
    with pytest.raises(ApiException) as err:
        batch.read_namespaced_job("missing", "default")
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'jobs.batch "missing" not found'


def test_22b_status_writes_follow_the_real_controller(jobs):
    """The Job's MODIFIED events carry the same status shapes as 22b: started (active 1),
    ready, the ended pod as uncounted with SuccessCriteriaMet, then counted and Complete."""
    created = _create(jobs, "rec36-job-ok", "sim.invalid/ok:1500ms")
    wait_until(lambda: (j := _job(jobs, "rec36-job-ok")) and any(
        c[0] == "Complete" for c in _conditions(j)))
    resp = jobs.send({"method": "GET", "path": JOBS, "headers": {}}, body=None, query={
        "watch": "1", "resourceVersion": str(int(created["metadata"]["resourceVersion"]) - 1),
        "timeoutSeconds": "1", "fieldSelector": "metadata.name=rec36-job-ok"})
    events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]

    def shape(status: dict) -> tuple:
        return (tuple(sorted(status)), tuple(c["type"] for c in status.get("conditions", ())),
                tuple(sorted(status.get("uncountedTerminatedPods", {}))),
                status.get("active"), status.get("ready"), status.get("succeeded"))

    got = [(e["type"], shape(e["object"]["status"])) for e in events]
    want = [(e["line"]["type"], shape(e["line"]["object"]["status"]))
            for e in load("22b")["events"]
            if e.get("line") and e["line"]["type"] in ("ADDED", "MODIFIED")
            and not e["line"]["object"]["metadata"].get("deletionTimestamp")]
    assert got == want
