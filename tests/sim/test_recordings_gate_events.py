"""Events around scheduling gates (24i in tests/data/k8s-recordings-v1.36): nothing writes an
Event for a gated pod (no FailedScheduling: the scheduler never tries it), so a Kueue-gated job
must not look unschedulable to a reader of Events; once the gate is gone the scheduler binds the
pod and says so (Scheduled). The kubelet's events in 24i come from the recording's stand-in and
are not compared."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_recordings_replay import Replayer, body_of, load

NS = "rec36-gates"


@pytest.fixture
def gates(sim: Any) -> Replayer:
    sim.require_sim("the replay recreates recorded state with fixed names")
    replay = Replayer(sim)
    replay.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": NS}})
    return replay


def _events(replay: Replayer) -> list[dict]:
    resp = replay.send({"method": "GET", "path": f"/api/v1/namespaces/{NS}/events",
                        "headers": {}}, body=None, query={})
    assert resp.status == 200
    return list(body_of(resp.read())["items"])


def test_24i_a_gated_pod_has_no_events_and_an_ungated_one_the_recorded_ones(gates):
    gates.exchange("24a")                                   # rec36-gated, stays gated
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rec36-gated-default"},
           "spec": {"restartPolicy": "Never", "containers": [
               {"name": "main", "image": "busybox:1.36", "command": ["sleep", "30"]}],
               "schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}}
    gates.create(f"/api/v1/namespaces/{NS}/pods", pod)
    time.sleep(1.0)                                         # a scheduler would have tried by now
    assert _events(gates) == []
    rec = load("24h")
    resp = gates.send({**rec["request"],
                       "path": f"/api/v1/namespaces/{NS}/pods/rec36-gated-default"})
    assert resp.status == 200
    resp.read()
    # 24i: what follows comes from the recording's scheduler/kubelet stand-ins, except that a
    # Scheduled event names the pod once it is bound; nothing was ever written for rec36-gated
    recorded = load("24i")["response"]["body"]["items"]
    assert ("rec36-gated-default", "Scheduled") in {
        (e["involvedObject"]["name"], e["reason"]) for e in recorded}
    deadline = time.time() + 15
    while time.time() < deadline and not any(e["reason"] == "Scheduled" for e in _events(gates)):
        time.sleep(0.1)
    events = _events(gates)
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    assert [e["involvedObject"]["name"] for e in scheduled] == ["rec36-gated-default"]
    assert scheduled[0]["message"].startswith(f"Successfully assigned {NS}/rec36-gated-default to ")
    assert {e["involvedObject"]["name"] for e in events} == {"rec36-gated-default"}
    assert not any(e["reason"] == "FailedScheduling" for e in events)
