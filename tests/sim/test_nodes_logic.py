"""Pure logic of the sim's node side: outcome parsing, scheduler fit/messages, path rewriting,
environment expansion, pod phase and volume files. Table-driven, plus a few properties."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp_sim import outcomes as oc
from kgahp_sim.kubelet import ContainerModel, backoff_delay, pod_phase, should_restart
from kgahp_sim.runtime import (
    ConfigMissing,
    VolumeFile,
    container_env,
    expand_env_references,
    rewrite_mount_paths,
    volume_files,
    write_volume,
)
from kgahp_sim.scheduler import (
    NodeInfo,
    PodNeeds,
    Scheduler,
    fit,
    pod_requests,
    unschedulable_message,
)
from kgahp_sim.simconfig import SimConfig
from kgahp_sim.store import Store, WatchEvent


@pytest.mark.parametrize("spec, kind, code, seconds", [
    ("sim.invalid/ok", oc.EXIT, 0, 1.0),
    ("sim.invalid/ok:latest", oc.EXIT, 0, 1.0),
    ("sim.invalid/exit3:2s", oc.EXIT, 3, 2.0),
    ("sim.invalid/exit0:500ms", oc.EXIT, 0, 0.5),
    ("sim.invalid/signal9:0.25", oc.EXIT, 137, 0.25),
    ("sim.invalid/sleep", oc.SLEEP, 0, 1.0),
    ("sim.invalid/oom:1m", oc.OOM, 137, 60.0),
    ("sim.invalid/evict:3s", oc.EVICT, 0, 3.0),
    ("sim.invalid/preempt", oc.PREEMPT, 0, 1.0),
    ("sim.invalid/node-lost:100ms", oc.NODE_LOST, 0, 0.1),
    ("sim.invalid/pull-error", oc.PULL_ERROR, 0, 1.0),
    ("sim.invalid/invalid-name", oc.INVALID_NAME, 0, 1.0),
    ("sim.invalid/config-error", oc.CONFIG_ERROR, 0, 1.0),
    ("sim.invalid/slow-delete", oc.SLOW_DELETE, 0, 1.0),
    ("sim.invalid/stuck-terminating", oc.STUCK_TERMINATING, 0, 1.0),
    ("exit42", oc.EXIT, 42, 1.0),                  # the annotation form has no registry
])
def test_parse_outcome_table(spec: str, kind: str, code: int, seconds: float) -> None:
    outcome = oc.parse_outcome(spec)
    assert outcome is not None
    assert (outcome.kind, outcome.exit_code, outcome.seconds) == (kind, code, seconds)


@pytest.mark.parametrize("spec", ["busybox:1.36", "sim.invalid/exit256", "sim.invalid/ok:soon",
                                  "sim.invalid/banana", "signal200"])
def test_parse_outcome_rejects(spec: str) -> None:
    assert oc.parse_outcome(spec) is None


@pytest.mark.parametrize("image, annotations, run_processes, expected", [
    ("busybox", None, True, None),
    ("busybox", None, False, (oc.EXIT, 0)),
    ("busybox", {oc.OUTCOME_ANNOTATION: "exit7"}, True, (oc.EXIT, 7)),
    ("sim.invalid/exit1", {oc.OUTCOME_ANNOTATION: "sim.invalid/oom"}, True, (oc.OOM, 137)),
    ("sim.invalid/unknown-thing", None, True, (oc.PULL_ERROR, 0)),
])
def test_outcome_for_table(image: str, annotations: Optional[dict[str, str]],
                           run_processes: bool, expected: Optional[tuple[str, int]]) -> None:
    outcome = oc.outcome_for(image, annotations, run_processes)
    assert (None if outcome is None else (outcome.kind, outcome.exit_code)) == expected


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0, max_value=1000, allow_nan=False).map(lambda f: round(f, 3)))
def test_duration_round_trip(seconds: float) -> None:
    assert oc.parse_duration(f"{seconds}s") == pytest.approx(seconds)
    millis = int(seconds * 1000)
    assert oc.parse_duration(f"{millis}ms") == pytest.approx(millis / 1000)


def _node(name: str, cpu: float = 8, gpus: float = 0, **labels: str) -> NodeInfo:
    allocatable = {"cpu": cpu, "memory": 32 * 2.0**30, "pods": 110.0, "nvidia.com/gpu": gpus}
    return NodeInfo(name, allocatable, labels)


@pytest.mark.parametrize("requests, selector, nodes, used, expected", [
    ({"cpu": 1}, {}, [_node("a"), _node("b")], {}, ("a", "")),
    ({"cpu": 4}, {}, [_node("a"), _node("b")], {"a": {"cpu": 6}}, ("b", "")),
    ({"cpu": 1000}, {}, [_node("a")], {},
     (None, "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.")),
    ({"nvidia.com/gpu": 1}, {}, [_node("a"), _node("b")], {},
     (None, "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are "
            "available: 2 No preemption victims found for incoming pod.")),
    ({"nvidia.com/gpu": 1}, {"gpu": "h100"}, [_node("a", gpus=1, gpu="a100"),
                                              _node("b", gpus=1, gpu="h100")], {}, ("b", "")),
    ({"cpu": 1}, {"gpu": "h100"}, [_node("a", gpu="a100"), _node("b", cpu=0.5, gpu="h100")], {},
     (None, "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node "
            "affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims "
            "found for incoming pod, 1 Preemption is not helpful for scheduling.")),
])
def test_fit_table(requests: dict[str, float], selector: dict[str, str], nodes: list[NodeInfo],
                   used: dict[str, dict[str, float]], expected: tuple[Optional[str], str]) -> None:
    assert fit(PodNeeds(requests, selector), nodes, used) == expected


def _placed_pod(i: int, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": f"pod-{i}"},
            "spec": {"nodeName": "one-cpu", "containers": [
                {"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": phase}}


def test_the_schedulers_node_usage_follows_pods_that_come_and_go_exactly() -> None:
    """Usage is kept as pods are placed and end, not summed over every placed pod on each pass
    (100,000 of them in the scale benchmark). Beside five pods of 100m that stay, 20,000 more
    come and go on a 1-CPU node; then five still fit and a sixth does not: no float error
    builds up."""
    scheduler = Scheduler(Store(), SimConfig())
    node = {"metadata": {"name": "one-cpu"}, "status": {"allocatable": {"cpu": "1", "pods": "110"}}}
    scheduler.observe(WatchEvent("ADDED", "nodes", None, node, 1))
    for i in range(5):
        scheduler.observe(WatchEvent("ADDED", "pods", "ns", _placed_pod(-1 - i), 2))
    for i in range(20000):
        scheduler.observe(WatchEvent("ADDED", "pods", "ns", _placed_pod(i), 2))
        scheduler.observe(WatchEvent("MODIFIED", "pods", "ns", _placed_pod(i, "Succeeded"), 3))
    assert scheduler.usage() == {"one-cpu": {"cpu": 0.5, "pods": 5.0}}
    info, needs = NodeInfo.from_object(node), PodNeeds.from_object(_placed_pod(99))
    for i in range(5):
        assert fit(needs, [info], scheduler.usage())[0] == "one-cpu", f"pod {i} should fit"
        scheduler.observe(WatchEvent("ADDED", "pods", "ns", _placed_pod(i), 4))
    assert scheduler.usage() == {"one-cpu": {"cpu": 1.0, "pods": 10.0}}
    assert fit(needs, [info], scheduler.usage())[0] is None
    scheduler.observe(WatchEvent("DELETED", "pods", "ns", _placed_pod(3), 5))
    assert fit(needs, [info], scheduler.usage())[0] == "one-cpu"
    for i in (0, 1, 2, 4, -1, -2, -3, -4, -5):
        scheduler.observe(WatchEvent("DELETED", "pods", "ns", _placed_pod(i), 6))
    assert scheduler.usage() == {}


def test_untolerated_taint_blocks_and_toleration_admits() -> None:
    tainted = NodeInfo("a", {"cpu": 8.0}, {}, ({"key": "k", "value": "v", "effect": "NoSchedule"},))
    node, message = fit(PodNeeds({"cpu": 1}), [tainted], {})
    assert node is None
    assert message.startswith("0/1 nodes are available: 1 node(s) had untolerated taint {k: v}.")
    tolerant = PodNeeds({"cpu": 1}, {}, ({"key": "k", "operator": "Exists"},))
    assert fit(tolerant, [tainted], {}) == ("a", "")


def test_pod_requests_sum_containers_and_max_init() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                           {"resources": {"limits": {"cpu": "1"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}
    requests = pod_requests(spec)
    assert requests["cpu"] == 2.0 and requests["memory"] == 2.0**30 and requests["pods"] == 1


def test_unschedulable_message_counts_per_reason() -> None:
    message = unschedulable_message([["Insufficient cpu", "Insufficient memory"],
                                     ["Insufficient cpu"]])
    assert message.startswith("0/2 nodes are available: 2 Insufficient cpu, 1 Insufficient memory.")


@pytest.mark.parametrize("text, expected", [
    ("/data/in.txt", "/host/d/in.txt"),
    ("/data", "/host/d"),
    ("/database/x", "/database/x"),                 # not on a path boundary
    ("--out=/data/out", "--out=/host/d/out"),
    ("cat /data/a /scratch/b", "cat /host/d/a /host/s/b"),
    ("/data/sub/x", "/host/sub/x"),                 # the longest mountPath wins
    ("a/data/x", "a/data/x"),                       # relative path: not the mount
])
def test_rewrite_mount_paths_table(text: str, expected: str) -> None:
    mounts = [("/data", "/host/d"), ("/scratch/", "/host/s"), ("/data/sub", "/host/sub")]
    assert rewrite_mount_paths(text, mounts) == expected


_TEXT = st.text(alphabet="abcxyz/ .=-_", max_size=30).filter(lambda t: "/mnt/q" not in t)


@settings(max_examples=60, deadline=None)
@given(_TEXT, _TEXT)
def test_rewrite_touches_only_mount_occurrences(before: str, after: str) -> None:
    assert rewrite_mount_paths(before, [("/mnt/q", "/h")]) == before
    rewritten = rewrite_mount_paths(f"{before} /mnt/q/f {after}", [("/mnt/q", "/h")])
    assert " /h/f " in rewritten and "/mnt/q" not in rewritten


@pytest.mark.parametrize("value, expected", [
    ("$(A)-x", "1-x"), ("$$(A)", "$(A)"), ("$(MISSING)", "$(MISSING)"), ("$(A", "$(A"),
    ("plain", "plain"),
])
def test_expand_env_references_table(value: str, expected: str) -> None:
    assert expand_env_references(value, {"A": "1"}) == expected


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
       "spec": {"nodeName": "sim-node-1"}, "status": {"podIP": "127.10.0.3"}}


def test_container_env_sources_in_order() -> None:
    secret = {"data": {"token": base64.b64encode(b"s3cret").decode()}}
    container = {"env": [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)b"},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k",
                                                       "optional": True}}},
    ]}
    env = container_env(POD, container, {("secrets", "s"): secret, ("secrets", "nope"): None},
                        {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "A": "a", "B": "ab", "NAME": "p", "NS": "ns", "APP": "x",
                   "TOKEN": "s3cret"}


@pytest.mark.parametrize("lookup, message", [
    ({("secrets", "s"): None}, 'secret "s" not found'),
    ({("secrets", "s"): {"data": {}}}, "couldn't find key token in Secret ns/s"),
])
def test_container_env_missing_secret(lookup: dict[Any, Any], message: str) -> None:
    container = {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                      "key": "token"}}}]}
    with pytest.raises(ConfigMissing) as error:
        container_env(POD, container, lookup, {})
    assert str(error.value) == message


def test_secret_volume_items_modes_and_missing() -> None:
    data = {"a": base64.b64encode(b"A").decode(), "b": base64.b64encode(b"B").decode()}
    volume = {"name": "creds", "secret": {"secretName": "s", "defaultMode": 0o440,
                                          "items": [{"key": "a", "path": "dir/a.txt"},
                                                    {"key": "b", "path": "b", "mode": 0o600}]}}
    files = volume_files(POD, volume, {("secrets", "s"): {"data": data}})
    assert files == [VolumeFile("dir/a.txt", b"A", 0o440), VolumeFile("b", b"B", 0o600)]
    with pytest.raises(ConfigMissing) as missing:
        volume_files(POD, volume, {("secrets", "s"): None})
    assert str(missing.value) == \
        'MountVolume.SetUp failed for volume "creds" : secret "s" not found'
    assert volume_files(POD, {"name": "e", "emptyDir": {}}, {}) is None


def test_write_volume_sets_modes_and_removes_stale(tmp_path: Path) -> None:
    assert write_volume(tmp_path, [VolumeFile("x/a", b"1", 0o400), VolumeFile("b", b"2", 0o644)])
    assert stat.S_IMODE(os.stat(tmp_path / "x/a").st_mode) == 0o400
    assert not write_volume(tmp_path, [VolumeFile("x/a", b"1", 0o400),
                                       VolumeFile("b", b"2", 0o644)])
    assert write_volume(tmp_path, [VolumeFile("b", b"3", 0o644)])
    assert not (tmp_path / "x").exists()
    assert (tmp_path / "b").read_bytes() == b"3"


def _c(state: dict[str, Any], last: Optional[dict[str, Any]] = None) -> ContainerModel:
    return ContainerModel("c", "img", state=state, last_state=last or {})


RUN = {"running": {}}
WAIT = {"waiting": {"reason": "ContainerCreating"}}
OK = {"terminated": {"exitCode": 0}}
BAD = {"terminated": {"exitCode": 2}}


@pytest.mark.parametrize("containers, policy, terminating, phase", [
    ([_c(WAIT)], "Never", False, "Pending"),
    ([_c(RUN)], "Never", False, "Running"),
    ([_c(OK)], "Never", False, "Succeeded"),
    ([_c(BAD)], "Never", False, "Failed"),
    ([_c(BAD)], "OnFailure", False, "Running"),
    ([_c(OK)], "Always", False, "Running"),
    ([_c(OK), _c(RUN)], "Never", False, "Running"),
    ([_c(OK), _c(BAD)], "Never", False, "Failed"),
    ([_c({"waiting": {"reason": "CrashLoopBackOff"}}, BAD)], "OnFailure", False, "Running"),
    ([_c({"terminated": {"exitCode": 143}})], "Always", True, "Failed"),
    ([_c(OK)], "Always", True, "Succeeded"),
])
def test_pod_phase_table(containers: list[ContainerModel], policy: str, terminating: bool,
                         phase: str) -> None:
    assert pod_phase(containers, True, False, policy, terminating) == phase


def test_phase_before_and_after_init() -> None:
    assert pod_phase([_c(WAIT)], False, False, "Never", False) == "Pending"
    assert pod_phase([_c(WAIT)], False, True, "Never", False) == "Failed"


def test_restart_rules_and_backoff() -> None:
    assert [should_restart(p, c) for p, c in [("Never", 1), ("OnFailure", 1), ("OnFailure", 0),
                                                ("Always", 0)]] == [False, True, False, True]
    delays = [backoff_delay(n) for n in range(8)]
    assert delays[0] == 0 and delays == sorted(delays) and max(delays) <= 3.0
