"""The pure parts of the tracking finalizer and the disruption policy, and the finalizer's
removal against the simulated apiserver (a JSON patch whose `test` op pins the index, 10d4)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Optional

import pytest

from kgahp import disruption, finalizers, lifecycle
from kgahp.codes import HoldCode
from kgahp.config import LifecycleSettings, Settings, settings_from_mapping
from kgahp.errors import ConfigError
from kgahp.finalizers import FINALIZER
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client
from kgahp.lifecycle import Action, Verdict
from kgahp.manifests import assemble
from kgahp.model import COMPLETED, HELD, IDLE, JobRequest, JobState
from kgahp.podspec import names
from kgahp.podspec.templates import Templates, parse_queue_config, templates_from_data
from kgahp.store import JobRecord


def _pod(attempt: int = 0, fins: Optional[list[str]] = None, job: str = "j") -> dict[str, Any]:
    return {"metadata": {"name": f"{job}-{attempt}", "namespace": "ns",
                         "labels": {names.LABEL_JOB: job, names.LABEL_ATTEMPT: str(attempt)},
                         "finalizers": [FINALIZER] if fins is None else fins}}


def _rec(**kw: Any) -> JobRecord:
    base: dict[str, Any] = {"job": "j", "namespace": "ns", "attempt": 0, "ad": "",
                            "submitted_at": 0.0}
    base.update(kw)
    return JobRecord(**base)


DONE = JobState(COMPLETED, exit_code=0)


@pytest.mark.parametrize(("pod", "rec", "released"), [
    (_pod(), None, True),                                       # not tracked: the sweeper's
    (_pod(), _rec(), False),                                    # running, result to come
    (_pod(), _rec(final=DONE), True),                           # result recorded
    (_pod(), _rec(cancelled=True), True),                       # cancelled
    (_pod(0), _rec(attempt=1), True),                           # superseded
    (_pod(1), _rec(attempt=0, final=DONE), False),              # a later attempt's pod
    (_pod(fins=["other.example/keep"]), None, False),           # not ours
], ids=["no-record", "live", "final", "cancelled", "superseded", "newer-pod", "not-ours"])
def test_release_reason(pod: dict, rec: Optional[JobRecord], released: bool) -> None:
    assert (finalizers.release_reason(pod, rec) is not None) is released


@pytest.mark.parametrize(("pod", "rec", "due"), [
    (_pod(), None, True),                                       # not tracked
    (_pod(), _rec(final=DONE, reported=True), True),            # answered and reported
    (_pod(), _rec(cancelled=True), True),                       # cancelled
    (_pod(0), _rec(attempt=1), True),                           # superseded
    (_pod(), _rec(final=DONE), False),                          # the reconcile does it
    (_pod(), _rec(), False),                                    # running
    (_pod(fins=["other.example/keep"]), None, False),           # not ours
], ids=["no-record", "reported", "cancelled", "superseded", "final", "live", "not-ours"])
def test_sweep_due_only_for_jobs_no_longer_tracked(pod: dict, rec: Optional[JobRecord],
                                                   due: bool) -> None:
    assert finalizers.sweep_due(finalizers.summarize(pod), rec) is due


def test_removal_patch_tests_the_index_it_removes() -> None:
    pod = _pod(fins=["kueue.x-k8s.io/managed", FINALIZER])
    assert finalizers.removal_patch(pod) == [
        {"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/1"}]
    assert finalizers.removal_patch(_pod(fins=[])) is None


def _verdict(state: JobState, action: Action, reason: str, rule: str) -> Verdict:
    return Verdict(state, action, None, reason, rule)


EVICTED = _verdict(JobState(IDLE, num_restarts=1), Action.RECREATE,
                   "disruption 1/3: Evicted: The node was low on resource: memory.", "disruption")
STUCK = _verdict(JobState(IDLE, num_restarts=1), Action.DELETE,
                 "disruption 1/3: pod stuck terminating on node n1", "stuck-terminating")


def test_recreate_changes_nothing() -> None:
    assert disruption.apply(EVICTED, "recreate", started=True, ref="ns/p") == EVICTED


def test_hold_names_the_disruption_and_the_knob() -> None:
    held = disruption.apply(EVICTED, "hold", started=False, ref="ns/p")
    assert held.state.job_status == HELD and held.state.hold_code == HoldCode.SystemPolicy == 26
    assert held.state.hold_reason is not None
    assert "Evicted: The node was low on resource: memory." in held.state.hold_reason
    assert "KGAHP_DISRUPTION_POLICY = hold" in held.state.hold_reason
    assert "disruption 1/3" not in held.state.hold_reason
    assert held.action is Action.NONE and disruption.stopped(held)
    assert held.state.num_restarts == 1


def test_remove_reports_idle_with_the_reason_only_after_a_start() -> None:
    kept = disruption.apply(EVICTED, "remove", started=True, ref="ns/p")
    assert kept.state.job_status == IDLE and kept.action is Action.NONE
    assert "KGAHP_DISRUPTION_POLICY = remove" in (kept.state.exit_reason or "")
    assert disruption.stopped(kept)
    assert disruption.apply(EVICTED, "remove", started=False, ref="ns/p") == EVICTED


def test_a_stuck_pod_is_still_force_deleted_under_hold() -> None:
    held = disruption.apply(STUCK, "hold", started=True, ref="ns/p")
    assert held.action is Action.DELETE and held.state.job_status == HELD


def test_what_is_not_a_disruption_is_never_changed() -> None:
    collect = Verdict(JobState(2), Action.COLLECT, DONE, "pod Succeeded", "succeeded")
    over = Verdict(JobState(HELD, hold_code=26), Action.NONE, None, "disruption 4 > 3", "x")
    for policy in disruption.POLICIES:
        assert disruption.apply(collect, policy, started=True, ref="ns/p") == collect
        assert disruption.apply(over, policy, started=True, ref="ns/p") == over


def test_vanished_before_start_is_a_disruption_a_hold_stops() -> None:
    gone = lifecycle.vanished(ever_started=False, restarts=0, settings=LifecycleSettings(),
                              namespace="ns", name="p")
    held = disruption.apply(gone, "hold", started=False, ref="ns/p")
    assert held.state.job_status == HELD
    assert "recreating" not in (held.state.hold_reason or "")


def test_a_queue_overrides_the_knob(tmp_path: Path) -> None:
    queues = parse_queue_config({"queues": {"ce": {"disruptionPolicy": "Hold"}, "ap": {}}},
                                str(tmp_path / "q.yaml"))
    templates = Templates(queues=queues)
    assert disruption.policy_for("ce", "recreate", templates) == "hold"
    assert disruption.policy_for("ap", "remove", templates) == "remove"
    assert disruption.policy_for("", "recreate", templates) == "recreate"
    with pytest.raises(ConfigError, match="disruptionPolicy 'later'"):
        parse_queue_config({"queues": {"x": {"disruptionPolicy": "later"}}}, "q.yaml")
    pod = {"metadata": {"annotations": {names.ANN_QUEUE: "ce"}}}
    assert disruption.queue_of(pod) == "ce"


def test_the_knob_refuses_other_policies() -> None:
    with pytest.raises(ConfigError):
        settings_from_mapping({"DISRUPTION_POLICY": "maybe"}, user="u")
    assert settings_from_mapping({"TRACKING_FINALIZER": "false"},
                                 user="u").lifecycle.tracking_finalizer is False


def _request() -> JobRequest:
    return JobRequest(job_directory="/spool/x", cmd="/bin/true", iwd="/tmp", stage_cmd=False,
                      image="busybox:1.36", memory_mib=64)


def test_the_assembled_pod_carries_the_finalizer_unless_switched_off() -> None:
    settings = Settings()
    templates = templates_from_data({}, {})
    made = assemble(_request(), settings, templates, attempt=0, restarts=0, bundle=None,
                    creds={})
    assert made.pod["metadata"]["finalizers"] == [FINALIZER]
    off = dataclasses.replace(settings, lifecycle=dataclasses.replace(
        settings.lifecycle, tracking_finalizer=False))
    made = assemble(_request(), off, templates, attempt=0, restarts=0, bundle=None, creds={})
    assert "finalizers" not in made.pod["metadata"]


def test_a_stale_index_never_removes_another_controllers_finalizer(
        sim: Any, sim_kubeconfig: str, tmp_path: Path) -> None:
    """kgahp read [ours, other]; meanwhile another controller put its finalizer first. The
    patch's test fails (422), kgahp reads again and removes only its own."""
    settings = settings_from_mapping({"KUBECONFIG": sim_kubeconfig, "QPS": "0",
                                      "STATE_DIR": str(tmp_path)}, user="t")
    kube = Kube(api_client(settings.kube), settings.kube)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "fin-race", "finalizers": [FINALIZER, "example.org/other"]},
        "spec": {"containers": [{"name": "job", "image": "busybox:1.36"}]}}
    seen = kube.create_pod("default", pod)
    stale = copy.deepcopy(seen)
    kube.call("reordering", lambda: kube.request(
        "PATCH", "/api/v1/namespaces/default/pods/fin-race",
        body={"metadata": {"finalizers": ["example.org/first", FINALIZER, "example.org/other"]}},
        content_type="application/merge-patch+json"))
    patched = finalizers.remove_finalizer(kube, stale, "test")
    assert patched is not None
    assert patched["metadata"]["finalizers"] == ["example.org/first", "example.org/other"]
    assert finalizers.remove_finalizer(kube, patched, "again") is None   # nothing to do
