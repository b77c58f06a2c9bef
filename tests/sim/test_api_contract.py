"""Kubernetes API contract, driven only through the official client.

Runs against the sim by default and against a real cluster with KGAHP_TEST_KUBECONFIG=/path
(then tests needing sim-only powers are skipped).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

NS = "default"
MANUAL = "kgahp-contract-manual"  # no scheduler serves it: pods stay unbound everywhere


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pod_body(name: str = "", *, labels: dict | None = None, image: str = "sim.invalid/sleep",
             resources: dict | None = None, containers: list | None = None,
             scheduler: str = MANUAL, **spec: Any) -> dict:
    container: dict = {"name": "main", "image": image, "command": ["sleep", "3600"]}
    if resources is not None:
        container["resources"] = resources
    meta: dict = {"name": name} if name else {}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"restartPolicy": "Never", "schedulerName": scheduler,
                     "containers": containers if containers is not None else [container],
                     **spec}}


def status_of(err: ApiException) -> dict:
    return json.loads(err.body)


@pytest.fixture
def core(sim: Any) -> client.CoreV1Api:
    return client.CoreV1Api(sim.api_client())


@pytest.fixture
def made(core: client.CoreV1Api) -> Any:
    """Create pods, deleting them (grace 0) afterwards."""
    names: list[str] = []

    def make(body: dict) -> Any:
        pod = core.create_namespaced_pod(NS, body)
        names.append(pod.metadata.name)
        return pod

    yield make
    for name in names:
        try:
            core.delete_namespaced_pod(name, NS, grace_period_seconds=0)
        except ApiException:
            pass


# ----- create / get / list / delete -------------------------------------------------------------
def test_create_applies_server_defaults_and_get_returns_the_same_object(core, made):
    name = unique()
    created = made(pod_body(name, resources={"limits": {"cpu": "500m", "memory": "128Mi"}}))
    assert created.metadata.uid and int(created.metadata.resource_version) > 0
    spec = created.spec
    assert spec.dns_policy == "ClusterFirst"
    assert spec.termination_grace_period_seconds == 30
    assert spec.service_account_name == "default"
    assert spec.priority == 0 and spec.enable_service_links is True
    assert {t.key for t in spec.tolerations} >= {"node.kubernetes.io/not-ready",
                                                  "node.kubernetes.io/unreachable"}
    main = spec.containers[0]
    assert main.termination_message_path == "/dev/termination-log"
    assert main.image_pull_policy == "Always"  # no tag means latest
    assert main.resources.requests == {"cpu": "500m", "memory": "128Mi"}  # copied from limits
    assert created.status.phase == "Pending"
    assert created.status.qos_class == "Guaranteed"
    got = core.read_namespaced_pod(name, NS)
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version == created.metadata.resource_version


def test_qos_class_and_pull_policy_follow_the_recorded_rules(core, made):
    best = made(pod_body(unique(), image="busybox:1.36"))
    burst = made(pod_body(unique(), resources={"requests": {"cpu": "100m"}}))
    assert best.status.qos_class == "BestEffort"
    assert best.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert burst.status.qos_class == "Burstable"


def test_duplicate_name_is_409_already_exists(core, made):
    name = unique()
    made(pod_body(name))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, pod_body(name))
    assert err.value.status == 409
    body = status_of(err.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == f'pods "{name}" already exists'
    assert body["details"] == {"name": name, "kind": "pods"}


def test_get_and_delete_missing_pod_are_404_naming_the_pod(core):
    for call in (core.read_namespaced_pod, core.delete_namespaced_pod):
        with pytest.raises(ApiException) as err:
            call("no-such-pod-kgahp", NS)
        assert err.value.status == 404
        assert status_of(err.value)["message"] == 'pods "no-such-pod-kgahp" not found'


def test_create_in_missing_namespace_is_404_naming_the_namespace(core):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("kgahp-no-such-ns", pod_body(unique()))
    assert err.value.status == 404
    assert status_of(err.value)["details"] == {"name": "kgahp-no-such-ns", "kind": "namespaces"}


def test_list_is_sorted_and_has_a_resource_version(core, made):
    tag = unique("t")
    names = sorted(unique() for _ in range(3))
    for n in reversed(names):
        made(pod_body(n, labels={"tag": tag}))
    listed = core.list_namespaced_pod(NS, label_selector=f"tag={tag}")
    assert [p.metadata.name for p in listed.items] == names
    assert int(listed.metadata.resource_version) >= max(
        int(p.metadata.resource_version) for p in listed.items)


# ----- validation -------------------------------------------------------------------------------
INVALID_422 = [
    ("name", lambda b: b["metadata"].update(name="Bad_Name"), "metadata.name"),
    ("label value", lambda b: b["metadata"].update(labels={"app": "bad value!"}),
     "metadata.labels"),
    ("label key", lambda b: b["metadata"].update(labels={"bad key": "x"}), "metadata.labels"),
    ("negative quantity",
     lambda b: b["spec"]["containers"][0].update(resources={"requests": {"memory": "-1Gi"}}),
     "spec.containers[0].resources.requests[memory]"),
    ("requests over limits",
     lambda b: b["spec"]["containers"][0].update(
         resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
     "spec.containers[0].resources.requests"),
    ("container name", lambda b: b["spec"]["containers"][0].update(name="Main_C"),
     "spec.containers[0].name"),
    ("env name", lambda b: b["spec"]["containers"][0].update(env=[{"name": "BAD=NAME"}]),
     "spec.containers[0].env[0].name"),
    ("missing image", lambda b: b["spec"]["containers"][0].pop("image"),
     "spec.containers[0].image"),
    ("restart policy", lambda b: b["spec"].update(restartPolicy="Sometimes"),
     "spec.restartPolicy"),
    ("deadline", lambda b: b["spec"].update(activeDeadlineSeconds=-5),
     "spec.activeDeadlineSeconds"),
    ("no containers", lambda b: b["spec"].update(containers=[]), "spec.containers"),
]


@pytest.mark.parametrize("case,mutate,field", INVALID_422, ids=[c[0] for c in INVALID_422])
def test_invalid_pods_are_422_with_the_field_in_causes(core, case, mutate, field):
    body = pod_body(unique())
    mutate(body)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, body)
    assert err.value.status == 422
    status = status_of(err.value)
    assert status["reason"] == "Invalid"
    assert field in [c["field"] for c in status["details"]["causes"]]
    assert status["message"].startswith(f'Pod "{body["metadata"]["name"]}" is invalid: ')


def test_several_errors_make_one_422_listing_them_in_order(core):
    body = pod_body("Bad_Name", labels={"app": "bad value!"}, activeDeadlineSeconds=-5)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, body)
    status = status_of(err.value)
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["metadata.name", "metadata.labels", "spec.activeDeadlineSeconds"]
    assert status["message"].startswith('Pod "Bad_Name" is invalid: [metadata.name: ')


def test_unparseable_quantity_is_400_not_422(core):
    body = pod_body(unique(), resources={"limits": {"memory": "2GB"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, body)
    assert err.value.status == 400
    status = status_of(err.value)
    assert status["reason"] == "BadRequest" and "details" not in status
    assert "quantities must match the regular expression" in status["message"]


def test_long_name_is_accepted_with_a_warning(core):
    name = "c" + "a" * 63
    api = core.api_client
    data = api.call_api(*api.param_serialize(
        "POST", "/api/v1/namespaces/{namespace}/pods", path_params={"namespace": NS},
        query_params=[("dryRun", "All")], body=pod_body(name),
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        auth_settings=["BearerToken"]))
    data.read()
    assert data.status == 201
    assert "a DNS label is recommended" in data.getheader("Warning")


# ----- dry run, generateName --------------------------------------------------------------------
def test_dry_run_returns_201_without_storing(core):
    name = unique()
    pod = core.create_namespaced_pod(NS, pod_body(name), dry_run="All")
    assert pod.metadata.uid and not pod.metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod(name, NS)
    assert err.value.status == 404


def test_generate_name_adds_five_characters(core, made):
    body = pod_body()
    body["metadata"]["generateName"] = "gen-"
    pod = made(body)
    assert pod.metadata.name.startswith("gen-") and len(pod.metadata.name) == 9
    assert pod.metadata.generate_name == "gen-"


# ----- selectors and pagination -----------------------------------------------------------------
def test_label_selectors_equality_set_based_and_not_exists(core, made):
    tag = unique("t")
    made(pod_body("a-" + tag, labels={"tag": tag, "tier": "batch"}))
    made(pod_body("b-" + tag, labels={"tag": tag, "tier": "web", "extra": "1"}))
    made(pod_body("c-" + tag, labels={"tag": tag}))

    def names(sel: str) -> list[str]:
        return [p.metadata.name[:1] for p in core.list_namespaced_pod(
            NS, label_selector=sel).items]

    assert names(f"tag={tag},tier=batch") == ["a"]
    assert names(f"tag in ({tag}),tier!=batch") == ["b", "c"]
    assert names(f"tag={tag},!extra") == ["a", "c"]
    assert names(f"tag={tag},tier notin (web,batch)") == ["c"]
    assert names(f"tag={tag},extra") == ["b"]


@pytest.mark.parametrize("selector,message", [
    ("app in rec", "unable to parse requirement: found 'rec' expected: '('"),
    ("app=bad value!", "found 'value', expected: ',' or 'end of string'"),
])
def test_bad_label_selector_is_400(core, selector, message):
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, label_selector=selector)
    assert err.value.status == 400
    assert status_of(err.value)["message"] == message


def test_field_selectors(core, made):
    name = unique()
    made(pod_body(name))
    by_name = core.list_namespaced_pod(NS, field_selector=f"metadata.name={name}")
    assert [p.metadata.name for p in by_name.items] == [name]
    pending = core.list_namespaced_pod(NS, field_selector=f"metadata.name={name},"
                                       "status.phase!=Running,spec.nodeName=")
    assert [p.metadata.name for p in pending.items] == [name]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, field_selector="spec.foo=bar")
    assert err.value.status == 400
    assert status_of(err.value)["message"] == "field label not supported: spec.foo"


def test_pagination_with_limit_and_continue(core, made):
    tag = unique("t")
    for i in range(5):
        made(pod_body(f"p{i}-{tag}", labels={"tag": tag}))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_pod(NS, label_selector=f"tag={tag}", limit=2,
                                        _continue=token)
        seen += [p.metadata.name for p in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"p{i}-{tag}" for i in range(5)]
    assert pages == 3
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, _continue="garbage")
    assert err.value.status == 400


def test_unfiltered_page_reports_remaining_item_count(core, made):
    for _ in range(3):
        made(pod_body(unique()))
    total = len(core.list_namespaced_pod(NS).items)
    first = core.list_namespaced_pod(NS, limit=1)
    assert first.metadata.remaining_item_count == total - 1


# ----- resourceVersion semantics ----------------------------------------------------------------
def test_resource_version_match_rules(core, sim):
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, resource_version_match="Exact")
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, resource_version="abc")
    assert err.value.status == 400                       # v1.36 (08h); v1.28 said 500
    assert status_of(err.value)["reason"] == "BadRequest"
    current = core.list_namespaced_pod(NS).metadata.resource_version
    again = core.list_namespaced_pod(NS, resource_version=current,
                                     resource_version_match="NotOlderThan")
    assert int(again.metadata.resource_version) >= int(current)


def test_future_resource_version_list_is_504_with_retry_after(core, sim):
    sim.require_sim("a real apiserver waits 3 s; the sim is configured shorter")
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, resource_version="999999999")
    assert err.value.status == 504
    assert err.value.headers["Retry-After"] == "1"
    assert status_of(err.value)["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


# ----- watch ------------------------------------------------------------------------------------
def _collect(core: client.CoreV1Api, want: int, **kw: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, NS, **kw):
        out.append((ev["type"], ev["object"]))
        if len(out) >= want:
            w.stop()
    return out


def test_watch_from_a_list_version_sees_only_later_changes(core, made):
    tag = unique("t")
    made(pod_body("old-" + tag, labels={"tag": tag}))
    rv = core.list_namespaced_pod(NS, label_selector=f"tag={tag}").metadata.resource_version
    name = "new-" + tag
    made(pod_body(name, labels={"tag": tag}))
    core.patch_namespaced_pod(name, NS, {"metadata": {"annotations": {"x": "1"}}},
                              _content_type="application/merge-patch+json")
    core.delete_namespaced_pod(name, NS, grace_period_seconds=0)
    events = _collect(core, 4, label_selector=f"tag={tag}", resource_version=rv,
                      timeout_seconds=5)
    assert [(t, o.metadata.name) for t, o in events] == [
        ("ADDED", name), ("MODIFIED", name), ("MODIFIED", name), ("DELETED", name)]
    versions = [int(o.metadata.resource_version) for _, o in events]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert events[2][1].metadata.deletion_timestamp is not None


def test_watch_without_version_starts_with_synthetic_added(core, made):
    tag = unique("t")
    for i in range(2):
        made(pod_body(f"s{i}-{tag}", labels={"tag": tag}))
    events = _collect(core, 2, label_selector=f"tag={tag}", timeout_seconds=3)
    assert [(t, o.metadata.name) for t, o in events] == [
        ("ADDED", f"s0-{tag}"), ("ADDED", f"s1-{tag}")]


def test_object_leaving_a_selector_is_sent_as_deleted(core, made):
    tag = unique("t")
    name = "sel-" + tag
    made(pod_body(name, labels={"tag": tag, "state": "in"}))
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.patch_namespaced_pod(name, NS, {"metadata": {"labels": {"state": "out"}}},
                              _content_type="application/merge-patch+json")
    core.patch_namespaced_pod(name, NS, {"metadata": {"labels": {"state": "in"}}},
                              _content_type="application/merge-patch+json")
    events = _collect(core, 2, label_selector=f"tag={tag},state=in", resource_version=rv,
                      timeout_seconds=5)
    assert [t for t, _ in events] == ["DELETED", "ADDED"]


def test_watch_ends_cleanly_at_timeout_seconds(core):
    started = time.monotonic()
    events = _collect(core, 1000, label_selector="nothing=here", timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert events == []
    assert 0.9 <= elapsed < 5


def test_bookmarks_carry_the_latest_version_of_other_namespaces(core, sim):
    sim.require_sim("a real apiserver sends bookmarks about once a minute")
    ns = unique("ns")
    core.create_namespace({"metadata": {"name": ns}})
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(ns, pod_body(unique()))
    w = watch.Watch()
    seen: list[dict] = []
    stream = w.stream(core.list_namespaced_pod, NS, resource_version=rv,
                      allow_watch_bookmarks=True, timeout_seconds=4,
                      label_selector="nothing=here")
    for ev in stream:
        seen.append(ev["raw_object"])
        w.stop()
    assert len(seen) == 1
    assert seen[0]["kind"] == "Pod"
    assert set(seen[0]["metadata"]) == {"resourceVersion", "creationTimestamp"}
    assert int(seen[0]["metadata"]["resourceVersion"]) > int(rv)
    core.delete_namespace(ns)


def test_watch_from_a_compacted_version_gets_410(core, made, sim):
    sim.require_sim("compaction cannot be forced on a real cluster")
    made(pod_body(unique()))
    old = core.list_namespaced_pod(NS).metadata.resource_version
    made(pod_body(unique()))
    sim.compact()
    raw = core.list_namespaced_pod(NS, watch=True, resource_version=old, timeout_seconds=5,
                                   _preload_content=False)
    lines = [json.loads(line) for line in raw.read().decode().splitlines()]
    assert raw.status == 200
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410
    assert lines[0]["object"]["reason"] == "Expired"
    assert lines[0]["object"]["message"].startswith(f"too old resource version: {old} (")
    with pytest.raises(ApiException) as err:
        _collect(core, 1, resource_version=old, timeout_seconds=5)
    assert err.value.status == 410
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, resource_version=old, resource_version_match="Exact")
    assert err.value.status == 410


def test_all_namespaces_list_and_watch(core, made):
    tag = unique("t")
    made(pod_body("all-" + tag, labels={"tag": tag}))
    listed = core.list_pod_for_all_namespaces(label_selector=f"tag={tag}")
    assert [p.metadata.namespace for p in listed.items] == [NS]
    w = watch.Watch()
    got = []
    for ev in w.stream(core.list_pod_for_all_namespaces, label_selector=f"tag={tag}",
                       timeout_seconds=3):
        got.append(ev["object"].metadata.name)
        w.stop()
    assert got == ["all-" + tag]


# ----- delete -----------------------------------------------------------------------------------
def _bind(core: client.CoreV1Api, name: str, node: str = "kgahp-contract-node") -> None:
    core.create_namespaced_pod_binding(
        name, NS, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
        _preload_content=False)


def test_deleting_a_bound_pod_is_graceful_then_grace_zero_removes_it(core, made):
    name = unique()
    made(pod_body(name))
    _bind(core, name)
    marked = core.delete_namespaced_pod(name, NS)
    assert marked.metadata.deletion_grace_period_seconds == 30
    assert marked.metadata.deletion_timestamp is not None
    assert core.read_namespaced_pod(name, NS).metadata.deletion_timestamp is not None
    uid = marked.metadata.uid
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod(name, NS, body=client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid="0000")))
    assert err.value.status == 409
    assert "does not match the UID in record" in status_of(err.value)["message"]
    gone = core.delete_namespaced_pod(name, NS, body=client.V1DeleteOptions(
        grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)))
    assert gone.metadata.deletion_grace_period_seconds == 0
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod(name, NS)
    assert err.value.status == 404


def test_unbound_pod_and_secret_deletes_are_immediate(core, made):
    name = unique()
    made(pod_body(name))
    core.delete_namespaced_pod(name, NS)
    with pytest.raises(ApiException):
        core.read_namespaced_pod(name, NS)
    secret = core.create_namespaced_secret(NS, {"metadata": {"name": name},
                                                "stringData": {"k": "v"}})
    raw = core.delete_namespaced_secret(name, NS, _preload_content=False)
    status = json.loads(raw.data)
    assert raw.status == 200 and status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": name, "kind": "secrets", "uid": secret.metadata.uid}


def test_invalid_propagation_policy_is_422(core, made):
    name = unique()
    made(pod_body(name))
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod(name, NS, propagation_policy="Sideways")
    assert err.value.status == 422
    assert status_of(err.value)["details"]["kind"] == "DeleteOptions"


# ----- secrets and patches ----------------------------------------------------------------------
@pytest.fixture
def secret(core: client.CoreV1Api) -> Any:
    name = unique("s")
    made = core.create_namespaced_secret(NS, {
        "metadata": {"name": name, "labels": {"app": "x"}}, "data": {"a": "YQ=="},
        "stringData": {"b": "bee"}})
    yield made
    try:
        core.delete_namespaced_secret(name, NS)
    except ApiException:
        pass


def test_secret_string_data_is_folded_into_data(secret):
    assert secret.data == {"a": "YQ==", "b": "YmVl"}
    assert secret.type == "Opaque"


def test_merge_strategic_and_json_patches(core, secret, made):
    name = secret.metadata.name
    # real owners: the garbage collector deletes dependents of missing owners
    first, other = made(pod_body(unique())), made(pod_body(unique()))
    merged = core.patch_namespaced_secret(
        name, NS, {"metadata": {"labels": {"new": "1"}}, "data": {"a": None}},
        _content_type="application/merge-patch+json")
    assert merged.metadata.labels == {"app": "x", "new": "1"} and "a" not in merged.data
    owner = {"apiVersion": "v1", "kind": "Pod", "name": first.metadata.name,
             "uid": first.metadata.uid}
    core.patch_namespaced_secret(name, NS, {"metadata": {"ownerReferences": [owner]}},
                                 _content_type="application/strategic-merge-patch+json")
    second = {**owner, "name": other.metadata.name, "uid": other.metadata.uid}
    smp = core.patch_namespaced_secret(name, NS, {"metadata": {"ownerReferences": [second]}},
                                       _content_type="application/strategic-merge-patch+json")
    assert [o.uid for o in smp.metadata.owner_references] == [other.metadata.uid,
                                                              first.metadata.uid]
    mp = core.patch_namespaced_secret(name, NS, {"metadata": {"ownerReferences": [owner]}},
                                      _content_type="application/merge-patch+json")
    assert [o.uid for o in mp.metadata.owner_references] == [first.metadata.uid]
    jp = core.patch_namespaced_secret(
        name, NS, [{"op": "add", "path": "/metadata/labels/j", "value": "p"}],
        _content_type="application/json-patch+json")
    assert jp.metadata.labels["j"] == "p"
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret(
            name, NS, [{"op": "test", "path": "/metadata/labels/j", "value": "nope"}],
            _content_type="application/json-patch+json")
    assert err.value.status == 422


def test_patch_with_plain_json_is_415_and_stale_version_is_409(core, secret):
    name = secret.metadata.name
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret(name, NS, {"metadata": {"labels": {"x": "y"}}},
                                     _content_type="application/json")
    assert err.value.status == 415
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_secret(name, NS, {"metadata": {"resourceVersion": "1",
                                                             "labels": {"x": "y"}}},
                                     _content_type="application/merge-patch+json")
    assert err.value.status == 409


def test_put_checks_the_resource_version(core, secret):
    name = secret.metadata.name
    body = {"metadata": {"name": name, "resourceVersion": secret.metadata.resource_version},
            "data": {"z": "eg=="}}
    replaced = core.replace_namespaced_secret(name, NS, body)
    assert replaced.data == {"z": "eg=="} and replaced.metadata.labels is None
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_secret(name, NS, body)
    assert err.value.status == 409
    assert "the object has been modified" in status_of(err.value)["message"]
    body["metadata"].pop("resourceVersion")
    assert core.replace_namespaced_secret(name, NS, body).data == {"z": "eg=="}


def test_secret_with_bad_base64_is_400_and_bad_key_is_422(core):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": unique()},
                                           "data": {"k": "not base64!!"}})
    assert err.value.status == 400
    assert "illegal base64 data at input byte 3" in status_of(err.value)["message"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(NS, {"metadata": {"name": unique()},
                                           "stringData": {"bad key!": "v"}})
    assert err.value.status == 422


def test_pod_spec_is_immutable_except_image(core, made):
    name = unique()
    made(pod_body(name))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod(
            name, NS, {"spec": {"containers": [{"name": "main", "command": ["true"]}]}},
            _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 422
    assert "pod updates may not change fields" in status_of(err.value)["message"]
    changed = core.patch_namespaced_pod(
        name, NS, {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}},
        _content_type="application/strategic-merge-patch+json")
    assert changed.spec.containers[0].image == "busybox:2"
    assert changed.spec.containers[0].command == ["sleep", "3600"]


def test_status_subresource_and_binding(core, made):
    name = unique()
    made(pod_body(name))
    _bind(core, name, "node-x")
    pod = core.read_namespaced_pod(name, NS)
    assert pod.spec.node_name == "node-x"
    assert [c.type for c in pod.status.conditions] == ["PodScheduled"]
    with pytest.raises(ApiException) as err:
        _bind(core, name, "node-y")
    assert err.value.status == 409
    patched = core.patch_namespaced_pod_status(
        name, NS, {"status": {"phase": "Running"}, "spec": {"nodeName": "ignored"}},
        _content_type="application/merge-patch+json")
    assert patched.status.phase == "Running" and patched.spec.node_name == "node-x"
    main = core.patch_namespaced_pod(name, NS, {"status": {"phase": "Failed"}},
                                     _content_type="application/merge-patch+json")
    assert main.status.phase == "Running"


# ----- logs -------------------------------------------------------------------------------------
def test_log_rules_for_unscheduled_and_multi_container_pods(core, made):
    name = unique()
    two = [{"name": "main", "image": "sim.invalid/sleep"},
           {"name": "sidecar", "image": "sim.invalid/sleep"}]
    made(pod_body(name, containers=two))
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(name, NS)
    assert err.value.status == 400
    assert status_of(err.value)["message"] == (
        f"a container name must be specified for pod {name}, choose one of: [main sidecar]")
    raw = core.read_namespaced_pod_log(name, NS, container="main", _preload_content=False)
    assert raw.status == 204
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(name, NS, container="nope")
    assert status_of(err.value)["message"] == f"container nope is not valid for pod {name}"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(name, NS, container="main", tail_lines=-1)
    assert err.value.status == 422


def test_log_of_a_finished_pod_honours_tail_and_limit(core, sim):
    sim.require_sim("needs the sim kubelet running a local process")
    name = unique()
    body = pod_body(name, scheduler="default-scheduler", image="busybox:1.36")
    body["spec"]["containers"][0]["command"] = ["sh", "-c", "echo one; echo two; echo three"]
    core.create_namespaced_pod(NS, body)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if core.read_namespaced_pod(name, NS).status.phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.1)
    assert core.read_namespaced_pod_log(name, NS) == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log(name, NS, tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log(name, NS, limit_bytes=6) == "one\ntw"
    stamped = core.read_namespaced_pod_log(name, NS, timestamps=True, tail_lines=1)
    assert stamped.endswith("Z three\n")


# ----- auth -------------------------------------------------------------------------------------
def test_wrong_token_is_401(sim):
    api_client = sim.api_client()
    bad = client.Configuration()
    bad.host = api_client.configuration.host
    bad.api_key = {"authorization": "wrong"}
    bad.api_key_prefix = {"authorization": "Bearer"}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(bad)).list_namespaced_pod(NS)
    assert err.value.status == 401
    assert status_of(err.value)["message"] == "Unauthorized"


def test_restricted_user_gets_403_and_ssar_says_no(sim):
    restricted = client.CoreV1Api(sim.api_client(restricted=True))
    with pytest.raises(ApiException) as err:
        restricted.list_namespaced_pod(NS)
    assert err.value.status == 403
    assert status_of(err.value)["message"] == (
        'pods is forbidden: User "sim-user" cannot list resource "pods" in API group "" in the '
        'namespace "default"')
    with pytest.raises(ApiException) as err:
        restricted.read_namespaced_pod_log("x", NS)
    assert 'cannot get resource "pods/log"' in status_of(err.value)["message"]
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": NS, "verb": "create",
                                              "resource": "pods"}}}
    no = client.AuthorizationV1Api(sim.api_client(restricted=True))
    yes = client.AuthorizationV1Api(sim.api_client())
    assert no.create_self_subject_access_review(review).status.allowed is False
    assert yes.create_self_subject_access_review(review).status.allowed is True


# ----- namespaces -------------------------------------------------------------------------------
def test_namespace_lifecycle(core):
    name = unique("ns")
    ns = core.create_namespace({"metadata": {"name": name}})
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": name}
    assert ns.spec.finalizers == ["kubernetes"] and ns.status.phase == "Active"
    core.create_namespaced_pod(name, pod_body(unique()))
    gone = json.loads(core.delete_namespace(name, _preload_content=False).data)
    assert gone["kind"] == "Namespace" and gone["status"]["phase"] == "Terminating"
    assert gone["metadata"]["deletionTimestamp"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as err:
            assert err.status == 404
            break
        time.sleep(0.2)
    else:
        pytest.fail("namespace never went away")


# ----- sim-only: faults and stats ---------------------------------------------------------------
def no_retry_core(sim: Any) -> client.CoreV1Api:
    """A client whose urllib3 does not retry, so a fault reaches the caller."""
    configuration = sim.api_client().configuration
    configuration.retries = False
    return client.CoreV1Api(client.ApiClient(configuration))


def test_stats_count_requests_and_watches_once(core, sim):
    sim.require_sim()
    sim.stats.reset()
    core.list_namespaced_pod(NS)
    core.list_namespaced_pod(NS)
    _collect(core, 100, timeout_seconds=1, label_selector="none=here")
    assert sim.stats.count("list", "pods") == 2
    assert sim.stats.count("watch", "pods") == 1


def test_injected_429_carries_retry_after_then_clears(core, sim):
    sim.require_sim()
    sim.faults.error(429, path="/pods$", times=1)
    with pytest.raises(ApiException) as err:
        no_retry_core(sim).list_namespaced_pod(NS)
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "1"
    assert status_of(err.value)["reason"] == "TooManyRequests"
    core.list_namespaced_pod(NS)


def test_official_client_retries_a_429_after_retry_after(core, sim):
    sim.require_sim()
    sim.stats.reset()
    sim.faults.error(429, path="/pods$", times=1)
    started = time.monotonic()
    core.list_namespaced_pod(NS)
    assert time.monotonic() - started >= 0.9
    assert sim.stats.count("list", "pods") == 2


def test_dropped_connection_and_down(core, sim):
    sim.require_sim()
    sim.faults.drop(path="/pods$", times=1)
    with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
        no_retry_core(sim).list_namespaced_pod(NS, _request_timeout=5)
    core.list_namespaced_pod(NS)
    sim.faults.down(0.5)
    with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
        no_retry_core(sim).list_namespaced_pod(NS, _request_timeout=5)
    time.sleep(0.6)
    core.list_namespaced_pod(NS)


@pytest.mark.parametrize("mid_event", [False, True])
def test_watch_cut_after_n_events(core, sim, made, mid_event):
    sim.require_sim()
    tag = unique("t")
    for i in range(3):
        made(pod_body(f"w{i}-{tag}", labels={"tag": tag}))
    sim.faults.cut_watch(2, mid_event=mid_event, times=1)
    raw = core.list_namespaced_pod(NS, watch=True, label_selector=f"tag={tag}",
                                   timeout_seconds=5, _preload_content=False)
    data = b""
    try:
        for chunk in raw.stream(1024):
            data += chunk
    except Exception:
        pass  # the cut shows up as a protocol error in urllib3
    lines = data.split(b"\n")
    assert [json.loads(x)["type"] for x in lines[:2]] == ["ADDED", "ADDED"]
    tail = lines[2]
    assert (tail != b"") == mid_event
    if mid_event:
        with pytest.raises(ValueError):
            json.loads(tail)


def test_latency_fault_delays_matching_requests(core, sim):
    sim.require_sim()
    sim.faults.latency(0.3, path="/pods$", method="GET", times=1)
    started = time.monotonic()
    core.list_namespaced_pod(NS)
    assert time.monotonic() - started >= 0.3


def test_concurrent_clients_get_distinct_versions(core, made):
    tag = unique("t")
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            made(pod_body(f"cc{i}-{tag}", labels={"tag": tag}))
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pods = core.list_namespaced_pod(NS, label_selector=f"tag={tag}").items
    assert len({p.metadata.resource_version for p in pods}) == 8


def test_follow_streams_the_log_until_the_container_ends(core, sim):
    sim.require_sim("needs the sim kubelet running a local process")
    name = unique()
    body = pod_body(name, scheduler="default-scheduler", image="busybox:1.36")
    body["spec"]["containers"][0]["command"] = [
        "sh", "-c", "echo start; sleep 0.6; echo middle; sleep 0.6; echo end"]
    core.create_namespaced_pod(NS, body)
    deadline = time.monotonic() + 20
    while core.read_namespaced_pod(name, NS).status.phase == "Pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    raw = core.read_namespaced_pod_log(name, NS, follow=True, _preload_content=False)
    text = b"".join(raw.stream(64)).decode()
    assert text == "start\nmiddle\nend\n"
    assert time.monotonic() - started > 0.5  # it waited for lines written later


def test_events_field_selector_on_involved_object(core):
    name = unique()
    event = {"metadata": {"name": name + ".1"},
             "involvedObject": {"kind": "Pod", "namespace": NS, "name": name},
             "reason": "Testing", "message": "hello", "type": "Normal"}
    core.create_namespaced_event(NS, event)
    try:
        got = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
        assert [e.reason for e in got.items] == ["Testing"]
        none = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}x")
        assert none.items == []
    finally:
        core.delete_namespaced_event(name + ".1", NS)


def test_probabilistic_faults_are_reproducible(sim):
    sim.require_sim()
    from kgahp_sim.faults import Faults

    def outcomes(seed: int) -> list[bool]:
        faults = Faults(seed=seed)
        faults.error(503, probability=0.5)
        return [faults.pick("GET", "/api/v1/pods", False) is not None for _ in range(40)]

    first = outcomes(7)
    assert first == outcomes(7)
    assert 5 < sum(first) < 35
    assert first != outcomes(8)


def test_kubeconfig_fixture_works_with_the_official_loader(sim_kubeconfig):
    from kubernetes import config

    api = client.CoreV1Api(config.new_client_from_config(config_file=sim_kubeconfig))
    assert api.read_namespace("default").status.phase == "Active"


def test_table_output_for_kubectl(core, made, sim):
    sim.require_sim("the column set is the sim's subset of kubectl's printers")
    name = unique()
    made(pod_body(name))
    api = core.api_client
    resp = api.call_api(*api.param_serialize(
        "GET", "/api/v1/namespaces/{namespace}/pods/{name}",
        path_params={"namespace": NS, "name": name},
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,"
                                 "application/json"},
        auth_settings=["BearerToken"]))
    resp.read()
    table = json.loads(resp.data)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:4] == [name, "0/1", "Pending", 0]


def test_delete_collection_removes_only_the_selected_secrets(core):
    tag = unique("t")
    for i in range(3):
        core.create_namespaced_secret(NS, {"metadata": {"name": f"dc{i}-{tag}", "labels": {
            "tag": tag, "keep": "yes" if i == 2 else "no"}}, "stringData": {"k": "v"}})
    raw = core.delete_collection_namespaced_secret(NS, label_selector=f"tag={tag},keep=no",
                                                   _preload_content=False)
    gone = json.loads(raw.data)
    assert raw.status == 200 and gone["kind"] == "SecretList"
    assert sorted(i["metadata"]["name"] for i in gone["items"]) == [f"dc0-{tag}", f"dc1-{tag}"]
    left = core.list_namespaced_secret(NS, label_selector=f"tag={tag}").items
    assert [s.metadata.name for s in left] == [f"dc2-{tag}"]
    core.delete_namespaced_secret(f"dc2-{tag}", NS)


def test_a_watch_ends_when_its_client_goes_away(sim):
    sim.require_sim()
    import socket

    before = sim.call(lambda: sim.store.subscriber_count)
    conn = socket.create_connection(("127.0.0.1", sim.port))
    conn.sendall(("GET /api/v1/namespaces/default/pods?watch=1&labelSelector=none%3Dhere "
                  f"HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {sim.config.token}\r\n\r\n"
                  ).encode())
    assert conn.recv(64).startswith(b"HTTP/1.1 200 OK")
    assert sim.call(lambda: sim.store.subscriber_count) == before + 1
    conn.close()
    deadline = time.monotonic() + 5
    while sim.call(lambda: sim.store.subscriber_count) != before:
        assert time.monotonic() < deadline, "the idle watch outlived its client"
        time.sleep(0.05)


def test_immutable_secret_data_cannot_change(core):
    name = unique()
    core.create_namespaced_secret(NS, {"metadata": {"name": name}, "immutable": True,
                                       "stringData": {"k": "v"}})
    try:
        with pytest.raises(ApiException) as err:
            core.patch_namespaced_secret(name, NS, {"stringData": {"k": "w"}},
                                         _content_type="application/merge-patch+json")
        assert err.value.status == 422
        assert "field is immutable when `immutable` is set" in status_of(err.value)["message"]
        labelled = core.patch_namespaced_secret(name, NS, {"metadata": {"labels": {"a": "b"}}},
                                                _content_type="application/merge-patch+json")
        assert labelled.metadata.labels == {"a": "b"}
    finally:
        core.delete_namespaced_secret(name, NS)


def test_protobuf_body_is_refused_with_415_not_misread_as_json(sim):
    """kubectl >= 1.32 sends imperative creates as protobuf. The sim speaks JSON only, so it
    answers 415 UnsupportedMediaType (as an apiserver does for a media type a resource lacks)
    instead of a 400 that blames the object."""
    sim.require_sim("a real apiserver accepts protobuf for built-in kinds")
    pool = urllib3.PoolManager()
    body = b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x07\n\x05\n\x03x13"
    resp = pool.request("POST", sim.url + "/api/v1/namespaces", body=body,
                        headers={"Authorization": f"Bearer {sim.token()}",
                                 "Content-Type": "application/vnd.kubernetes.protobuf",
                                 "Accept": "application/json"})
    status = json.loads(resp.data)
    assert resp.status == 415
    assert status["reason"] == "UnsupportedMediaType" and status["code"] == 415
    assert "application/json" in status["message"]
