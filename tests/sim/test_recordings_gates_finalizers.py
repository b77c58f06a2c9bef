"""Replay of the v1.36 recordings of pod finalizers (23a*) and scheduling gates (24a-24h)
against the sim, with the Replayer of test_recordings_replay.

Covered: 23a, 23a2, 23a3, 23a4, 23a5, 23a6, 23a6b, 23a7 (event types and what each carries),
23b2/23b3 (a running pod held by its finalizer after termination), 24a, 24a2, 24b, 24b2, 24b3,
24c, 24c2, 24d, 24d2, 24e, 24f, 24g (default scheduler after the gate goes), 24h, 24j (the
gated pod's events).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_recordings_replay import (
    Replayer,
    assert_same_answer,
    assert_same_object,
    body_of,
    load,
)


def _namespace(replay: Replayer, name: str) -> None:
    replay.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})


@pytest.fixture
def gates(sim: Any) -> Replayer:
    sim.require_sim("the replay recreates recorded state with fixed names")
    fresh_replay = Replayer(sim)
    _namespace(fresh_replay, "rec36-gates")
    return fresh_replay


@pytest.fixture
def fin(sim: Any) -> Replayer:
    sim.require_sim("the replay recreates recorded state with fixed names")
    fresh_replay = Replayer(sim)
    _namespace(fresh_replay, "rec36-fin")
    return fresh_replay


def _watch_events(replay: Replayer, path: str, rv: str, selector: str = "",
                  seconds: float = 1.0) -> list[dict]:
    query = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": str(max(1, int(seconds)))}
    if selector:
        query["labelSelector"] = selector
    resp = replay.send({"method": "GET", "path": path, "headers": {}}, body=None, query=query)
    return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def _get(replay: Replayer, path: str) -> tuple[int, Any]:
    resp = replay.send({"method": "GET", "path": path, "headers": {}}, body=None, query={})
    return resp.status, body_of(resp.read())


# ----- 24: scheduling gates ---------------------------------------------------------------------
def test_24a_gated_pod_is_marked_schedulinggated_at_create(gates):
    resp, data, rec = gates.exchange("24a")
    assert_same_answer(resp, data, rec)
    assert_same_object(data, rec)
    resp, data, rec = gates.exchange("24a2")
    assert_same_answer(resp, data, rec)
    assert_same_object(data, rec)


def test_24b_binding_a_gated_pod_is_409_and_ungated_binds(gates):
    gates.exchange("24a")
    resp, data, rec = gates.exchange("24b")
    assert_same_answer(resp, data, rec)
    gates.exchange("24d")           # 24b2 binds once the gate is removed
    rec2 = load("24b2")
    resp = gates.send(rec2["request"])
    assert resp.status == rec2["response"]["status"] == 201
    _, pod = _get(gates, rec2["request"]["path"].rsplit("/binding", 1)[0])
    conditions = [(c["type"], c["status"]) for c in pod["status"]["conditions"]]
    want = [(c["type"], c["status"]) for c in load("24b3")["response"]["body"]["status"][
        "conditions"]]
    assert conditions == want


@pytest.mark.parametrize("case", ["24c", "24e", "24f"])
def test_24_gate_validation(gates, case):
    gates.exchange("24a")
    resp, data, rec = gates.exchange(case)
    assert_same_answer(resp, data, rec)


def test_24d_removing_the_gate_keeps_the_condition_then_re_adding_is_422(gates):
    created = body_of(gates.exchange("24a")[1])
    resp, data, rec = gates.exchange("24d")
    assert_same_answer(resp, data, rec)
    assert_same_object(data, rec)
    resp, data, rec = gates.exchange("24d2")
    assert_same_object(data, rec)
    resp, data, rec = gates.exchange("24c2")
    assert_same_answer(resp, data, rec)
    # 24j: ADDED gated, MODIFIED ungated (generation 2, still SchedulingGated)
    events = _watch_events(gates, "/api/v1/namespaces/rec36-gates/pods",
                           str(int(created["metadata"]["resourceVersion"]) - 1))
    summary = [(e["type"], bool(e["object"]["spec"].get("schedulingGates")),
                e["object"]["metadata"]["generation"],
                [(c["type"], c["status"], c.get("reason"))
                 for c in e["object"]["status"].get("conditions", [])]) for e in events]
    want = [(e["type"], bool(e["schedulingGates"]), e["generation"],
             [tuple(c) for c in e["conditions"]]) for e in load("24j")["events"][:2]]
    assert summary == want


def test_24g_default_scheduler_binds_once_the_gate_is_removed(gates):
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rec36-gated-default"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                "schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}}
    gates.create("/api/v1/namespaces/rec36-gates/pods", body)
    path = "/api/v1/namespaces/rec36-gates/pods/rec36-gated-default"
    time.sleep(0.5)
    _, pod = _get(gates, path)
    assert "nodeName" not in pod["spec"]            # the scheduler leaves a gated pod alone
    assert pod["status"]["conditions"][0]["reason"] == "SchedulingGated"
    rec = load("24h")
    resp = gates.send({**rec["request"], "path": path})
    assert resp.status == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        _, pod = _get(gates, path)
        if pod["spec"].get("nodeName"):
            break
        time.sleep(0.05)
    assert pod["spec"]["nodeName"].startswith("sim-node-")
    scheduled = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled == [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": scheduled[0]["lastTransitionTime"]}]


# ----- 23: finalizers ---------------------------------------------------------------------------
def test_23a_finalizer_holds_a_deleted_pod_until_removed(fin):
    resp, data, rec = fin.exchange("23a")
    assert_same_answer(resp, data, rec)
    assert_same_object(data, rec)
    rv = body_of(data)["metadata"]["resourceVersion"]
    for case in ("23a2", "23a3", "23a4"):
        resp, data, rec = fin.exchange(case)
        assert_same_answer(resp, data, rec)
        assert_same_object(data, rec)
    resp, data, rec = fin.exchange("23a5")
    assert_same_answer(resp, data, rec)
    resp, data, rec = fin.exchange("23a6")
    assert_same_answer(resp, data, rec)
    assert_same_object(data, rec)
    resp, data, rec = fin.exchange("23a6b")
    assert_same_answer(resp, data, rec)
    events = _watch_events(fin, "/api/v1/namespaces/rec36-fin/pods", str(int(rv) - 1),
                           "case=23a")
    got = [(e["type"], e["object"]["metadata"].get("finalizers"),
            e["object"]["metadata"].get("deletionGracePeriodSeconds")) for e in events]
    want = [(e["type"], e.get("finalizers"), e.get("deletionGracePeriodSeconds"))
            for e in load("23a7")["events"]]
    assert got == want


def test_23b_running_pod_with_finalizer_stays_terminated_until_released(fin):
    fin.create("/api/v1/namespaces/rec36-fin/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "rec36-fin-running", "labels": {"case": "23b"},
                     "finalizers": ["example.org/collect"]},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "main", "image": "busybox:1.36",
                                 "command": ["sleep", "60"]}]}})
    path = "/api/v1/namespaces/rec36-fin/pods/rec36-fin-running"
    deadline = time.time() + 15
    while time.time() < deadline and _get(fin, path)[1]["status"].get("phase") != "Running":
        time.sleep(0.1)
    resp, data, rec = fin.exchange("23b")
    assert resp.status == rec["response"]["status"] == 200
    deadline = time.time() + 15
    while time.time() < deadline:
        status, pod = _get(fin, path)
        if pod["metadata"].get("deletionGracePeriodSeconds") == 0:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    status, pod = _get(fin, path)
    want = load("23b2")["response"]["body"]
    assert status == 200
    assert pod["status"]["phase"] == want["status"]["phase"] == "Failed"
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 0
    assert pod["metadata"]["finalizers"] == ["example.org/collect"]
    resp, data, rec = fin.exchange("23b3")
    assert resp.status == 200 and "finalizers" not in body_of(data)["metadata"]
    assert _get(fin, path)[0] == 404
