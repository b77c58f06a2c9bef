"""More of the v1.36 recordings replayed against the sim: the Job cases test_jobs.py leaves out
(22b2, 22e2, 22e3, 22f2, 22f3, 22j, 22j2, 22n) and the pod deletions that
test_recordings_gates_finalizers.py leaves out (23b4, 23c, 23c2, 23c3, 23d, 23e, 24h2).

Job mode (issue 15) relies on these: a Job with `backoffLimit: 0` whose pod fails is Failed
after one FailureTarget write and its pod is kept with the tracking finalizer gone (22e*); at
`activeDeadlineSeconds` the controller deletes the pod and fails the Job (22f*); a suspended Job
makes no pod (22j*). The pod event sequences compare what a watcher (kgahp's cache) sees:
event type, phase, finalizers and deletion grace, in order.

The deadline cases are asserted twice: what a reader of the Job or pod relies on, and the
exact recorded sequence of writes (22f2: the pod is deleted with its tracking finalizer, which
goes while it still runs; 22f3: it is counted failed, uncounted first, before it ends, and
Failed comes in a write of its own once none is terminating).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from harness import wait_until
from test_recordings_replay import (
    Replayer,
    assert_same_answer,
    assert_same_object,
    body_of,
    load,
)

JOBS_NS = "rec36-jobs"
JOBS = f"/apis/batch/v1/namespaces/{JOBS_NS}/jobs"
FIN_NS = "rec36-fin"



def _replayer(sim: Any, namespace: str) -> Replayer:
    sim.require_sim("the replay recreates recorded state with fixed names")
    replay = Replayer(sim)
    replay.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": namespace}})
    return replay


@pytest.fixture
def jobs(sim: Any) -> Replayer:
    return _replayer(sim, JOBS_NS)


@pytest.fixture
def fin(sim: Any) -> Replayer:
    return _replayer(sim, FIN_NS)


def _get(replay: Replayer, path: str, query: dict | None = None) -> tuple[int, Any]:
    resp = replay.send({"method": "GET", "path": path, "headers": {}}, body=None,
                       query=query or {})
    return resp.status, body_of(resp.read())


def _watch(replay: Replayer, path: str, rv: str, **selectors: str) -> list[dict]:
    query = {"watch": "1", "resourceVersion": str(int(rv) - 1), "timeoutSeconds": "1",
             **selectors}
    resp = replay.send({"method": "GET", "path": path, "headers": {}}, body=None, query=query)
    return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def _pod_steps(events: list[dict]) -> list[tuple]:
    return [(e["type"], e["object"]["status"].get("phase"),
             tuple(e["object"]["metadata"].get("finalizers") or ()),
             e["object"]["metadata"].get("deletionGracePeriodSeconds"))
            for e in events if e["type"] != "BOOKMARK"]


def _recorded_pod_steps(name: str) -> list[tuple]:
    return [(e["type"], e.get("phase"), tuple(e.get("finalizers") or ()),
             e.get("deletionGracePeriodSeconds")) for e in load(name)["events"]]


def _job_steps(events: list[dict]) -> list[tuple]:
    """What the job controller wrote, write by write: conditions and counters. `ready` is left
    out: it follows the pod's readiness, which the recordings' kubelet stand-in decided."""
    out = []
    for e in events:
        if e["type"] == "BOOKMARK":
            continue
        status = e["object"].get("status") or {}
        step = (e["type"], tuple((c["type"], c.get("reason")) for c in status.get("conditions",
                                                                                  ())),
                status.get("active"), status.get("failed"), status.get("succeeded"),
                status.get("terminating"),
                tuple(sorted(status.get("uncountedTerminatedPods") or {})))
        if not out or out[-1] != step:
            out.append(step)
    return out


def _recorded_job_steps(name: str) -> list[tuple]:
    return _job_steps([e["line"] for e in load(name)["events"] if e.get("line")])


def _job(replay: Replayer, name: str, image: str, **spec: Any) -> dict:
    return replay.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                                "metadata": {"name": name},
                                "spec": {"template": {"spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "main", "image": image}]}},
                                    **spec}})


def _finished(replay: Replayer, name: str) -> dict:
    return wait_until(lambda: (j := _get(replay, f"{JOBS}/{name}")[1]) and any(
        c["type"] in ("Complete", "Failed") for c in (j.get("status") or {}).get(
            "conditions", ())) and j, timeout=30)


# ----- 22: Jobs --------------------------------------------------------------------------------
def test_22e2_22e3_failed_pod_under_backoff_limit_0(jobs):
    created = _job(jobs, "rec36-job-fail", "sim.invalid/exit3:1s", backoffLimit=0,
                   podReplacementPolicy="Failed")
    _finished(jobs, "rec36-job-fail")
    events = _watch(jobs, JOBS, created["metadata"]["resourceVersion"],
                    fieldSelector="metadata.name=rec36-job-fail")
    assert _job_steps(events) == _recorded_job_steps("22e3")
    # 22e2: the pod is kept, Failed with its exit code, the tracking finalizer removed
    _, pods = _get(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods",
                   {"labelSelector": "batch.kubernetes.io/job-name=rec36-job-fail"})
    (pod,) = pods["items"]
    want = load("22e2")["response"]["body"]
    pod = wait_until(lambda: (p := _get(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods/"
                                   f"{pod['metadata']['name']}")[1])
                and not p["metadata"].get("finalizers") and p)
    assert pod["status"]["phase"] == want["status"]["phase"] == "Failed"
    got_term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    want_term = want["status"]["containerStatuses"][0]["state"]["terminated"]
    assert got_term["exitCode"] == want_term["exitCode"] == 3
    assert got_term["reason"] == want_term["reason"]
    assert "deletionTimestamp" not in pod["metadata"]
    assert pod["metadata"].get("finalizers") == want["metadata"].get("finalizers")


def _deadline_job(jobs: Replayer) -> str:
    created = _job(jobs, "rec36-job-deadline", "sim.invalid/sleep", backoffLimit=0,
                   activeDeadlineSeconds=2)
    _finished(jobs, "rec36-job-deadline")
    return str(created["metadata"]["resourceVersion"])


def test_22f3_deadline_fails_the_job_after_a_failure_target(jobs):
    """What a reader of the Job relies on: FailureTarget(DeadlineExceeded) comes first, then
    Failed(DeadlineExceeded) with the pod counted as failed and none left terminating."""
    rv = _deadline_job(jobs)
    got = _job_steps(_watch(jobs, JOBS, rv, fieldSelector="metadata.name=rec36-job-deadline"))
    want = _recorded_job_steps("22f3")
    first_target = next(i for i, s in enumerate(got) if s[1])
    assert got[:first_target] == want[:first_target]         # created, then active 1
    assert got[first_target][1] == want[first_target][1] == (("FailureTarget",
                                                                "DeadlineExceeded"),)
    assert got[-1] == want[-1]                               # Failed, failed 1, terminating 0
    assert all(len(s[1]) == 1 for s in got[first_target:-1])  # Failed only in the last write


def test_22f3_deadline_status_writes_are_the_real_controllers(jobs):
    rv = _deadline_job(jobs)
    got = _job_steps(_watch(jobs, JOBS, rv, fieldSelector="metadata.name=rec36-job-deadline"))
    assert got == _recorded_job_steps("22f3")


def _deadline_pod_steps(jobs: Replayer) -> list[tuple]:
    rv = _deadline_job(jobs)
    selector = "batch.kubernetes.io/job-name=rec36-job-deadline"
    wait_until(lambda: _get(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods",
                       {"labelSelector": selector})[1]["items"] == [], timeout=40)
    return _pod_steps(_watch(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods", rv,
                             labelSelector=selector))


def test_22f2_at_the_deadline_the_controller_deletes_the_pod_gracefully(jobs):
    got = _deadline_pod_steps(jobs)
    want = _recorded_pod_steps("22f2")
    running = [s for s in got if s[1] == "Running" and s[3] is None]
    assert running and running[-1] == next(s for s in want if s[1] == "Running")
    deleting = [s for s in got if s[3] is not None]
    assert deleting[0][:2] == ("MODIFIED", "Running") and deleting[0][3] == 30   # pod's grace
    assert got[-1] == want[-1] == ("DELETED", "Failed", (), 0)
    assert [s[0] for s in got].count("DELETED") == 1


def test_22f2_deadline_pod_events_are_the_real_ones(jobs):
    got = _deadline_pod_steps(jobs)
    assert got == _recorded_pod_steps("22f2"), "\n".join(map(str, got))


def test_22b2_pod_of_a_complete_job_loses_its_finalizer_then_goes_with_the_ttl(jobs):
    created = _job(jobs, "rec36-job-ok", "sim.invalid/ok:1s", backoffLimit=0,
                   ttlSecondsAfterFinished=1)
    _finished(jobs, "rec36-job-ok")
    selector = "batch.kubernetes.io/job-name=rec36-job-ok"
    wait_until(lambda: _get(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods",
                       {"labelSelector": selector})[1]["items"] == [], timeout=30)
    pods = _watch(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods",
                  created["metadata"]["resourceVersion"], labelSelector=selector)
    assert _pod_steps(pods) == _recorded_pod_steps("22b2")


def test_22j_22j2_a_suspended_job_is_defaulted_as_recorded_and_makes_no_pod(jobs):
    resp, data, rec = jobs.exchange("22j")
    assert_same_answer(resp, data, rec)
    jobs.uids[rec["response"]["body"]["metadata"]["uid"]] = body_of(data)["metadata"]["uid"]
    assert_same_object(data, rec, jobs)
    want = load("22j2")
    job = wait_until(lambda: (j := _get(jobs, want["request"]["path"])[1]) and (
        j.get("status") or {}).get("conditions") and j)
    assert [(c["type"], c["status"], c["reason"]) for c in job["status"]["conditions"]] == [
        (c["type"], c["status"], c["reason"]) for c in want["response"]["body"]["status"][
            "conditions"]]
    assert "startTime" not in job["status"] and "startTime" not in want["response"]["body"][
        "status"]
    time.sleep(0.5)
    _, pods = _get(jobs, f"/api/v1/namespaces/{JOBS_NS}/pods",
                   {"labelSelector": "batch.kubernetes.io/job-name=rec36-job-suspend"})
    assert pods["items"] == [] and not want.get("pods_list", {}).get("items")


def test_22n_a_suspended_jobs_image_cannot_change(jobs):
    _job(jobs, "rec36-job-immut", "sim.invalid/sleep", suspend=True)
    resp, data, rec = jobs.exchange("22n")
    assert resp.status == rec["response"]["status"] == 422
    got, want = body_of(data), rec["response"]["body"]
    assert got["reason"] == want["reason"] == "Invalid"
    assert [c["field"] for c in got["details"]["causes"]] == [
        c["field"] for c in want["details"]["causes"]]



def test_a_suspended_jobs_scheduling_directives_may_change_until_it_starts(jobs):
    """Mutable scheduling directives (what Kueue writes on admission): a suspended Job that
    never started takes a new nodeSelector; once started, the template is immutable (22n2)."""
    _job(jobs, "rec36-job-immut", "sim.invalid/sleep", suspend=True)
    path = f"{JOBS}/rec36-job-immut"

    def patch(body: dict) -> Any:
        return jobs.send({"method": "PATCH", "path": path, "headers": {
            "Content-Type": "application/merge-patch+json"}}, body=body)

    resp = patch({"spec": {"template": {"spec": {"nodeSelector": {"zone": "a"}}}}})
    assert resp.status == 200, resp.read()
    assert patch({"spec": {"suspend": False}}).status == 200
    wait_until(lambda: (_get(jobs, path)[1].get("status") or {}).get("startTime"))
    resp = patch({"spec": {"template": {"spec": {"nodeSelector": {"zone": "b"}}}}})
    assert resp.status == 422
    assert [c["field"] for c in body_of(resp.read())["details"]["causes"]] == ["spec.template"]


# ----- 23: deleting pods -----------------------------------------------------------------------
def _running_pod(replay: Replayer, name: str, case: str, grace: int = 30,
                 finalizers: tuple[str, ...] = ()) -> dict:
    body: dict = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "labels": {"case": case}},
                  "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": grace,
                           "containers": [{"name": "main", "image": "busybox:1.36",
                                           "command": ["sleep", "3600"]}]}}
    if finalizers:
        body["metadata"]["finalizers"] = list(finalizers)
    created = replay.create(f"/api/v1/namespaces/{FIN_NS}/pods", body)
    path = f"/api/v1/namespaces/{FIN_NS}/pods/{name}"
    wait_until(lambda: _get(replay, path)[1]["status"].get("phase") == "Running")
    return created


def test_23c_grace_0_delete_of_a_running_pod_removes_it_at_once(fin):
    created = _running_pod(fin, "rec36-fin-grace0", "23c")
    resp, data, rec = fin.exchange("23c")
    assert resp.status == rec["response"]["status"] == 200
    got, want = body_of(data), rec["response"]["body"]
    assert got["kind"] == want["kind"] == "Pod"
    assert got["metadata"]["deletionGracePeriodSeconds"] == \
        want["metadata"]["deletionGracePeriodSeconds"] == 0
    resp, data, rec = fin.exchange("23c2")
    assert_same_answer(resp, data, rec)
    events = _watch(fin, f"/api/v1/namespaces/{FIN_NS}/pods",
                    created["metadata"]["resourceVersion"], labelSelector="case=23c")
    assert _pod_steps(events)[-2:] == _recorded_pod_steps("23c3")[-2:]
    assert [s[0] for s in _pod_steps(events)][-2:] == ["MODIFIED", "DELETED"]


@pytest.mark.parametrize("case,name", [("23d", "rec36-fin-graceful"),
                                       ("23e", "rec36-fin-kubectl")])
def test_23d_23e_default_and_kubectl_deletes_are_graceful(fin, case, name):
    _running_pod(fin, name, case)
    resp, data, rec = fin.exchange(case)
    assert resp.status == rec["response"]["status"] == 200
    got, want = body_of(data), rec["response"]["body"]
    assert got["metadata"]["deletionGracePeriodSeconds"] == \
        want["metadata"]["deletionGracePeriodSeconds"] == 30
    assert got["metadata"]["generation"] == want["metadata"]["generation"]
    assert got["status"]["phase"] == want["status"]["phase"]
    assert resp.headers.get("Content-Type") == rec["response"]["headers"]["Content-Type"]


def test_23b4_a_running_pod_held_by_its_finalizer_is_seen_as_recorded(fin):
    created = _running_pod(fin, "rec36-fin-running", "23b", grace=2,
                           finalizers=("example.org/collect",))
    path = f"/api/v1/namespaces/{FIN_NS}/pods/rec36-fin-running"
    resp = fin.send({"method": "DELETE", "path": path, "headers": {}}, body=None, query={})
    assert resp.status == 200
    resp.read()
    wait_until(lambda: _get(fin, path)[1]["metadata"].get("deletionGracePeriodSeconds") == 0)
    resp = fin.send({"method": "PATCH", "path": path,
                     "headers": {"Content-Type": "application/merge-patch+json"}},
                    body={"metadata": {"finalizers": None}}, query={})
    assert resp.status == 200
    resp.read()
    wait_until(lambda: _get(fin, path)[0] == 404)
    events = _watch(fin, f"/api/v1/namespaces/{FIN_NS}/pods",
                    created["metadata"]["resourceVersion"], labelSelector="case=23b")
    want = [(t, p, f, 30 if g == 30 else g) for t, p, f, g in _recorded_pod_steps("23b4")]
    got = [(t, p, f, 30 if g == 2 else g) for t, p, f, g in _pod_steps(events)]
    assert got == want
