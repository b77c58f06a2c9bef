"""Job mode's pure parts: the queue settings, the batch/v1 Job built from the pod kgahp would
create (kgahp/workloads.py), and what `kgahp render` prints for a job-mode queue. The Job is
checked against the Kubernetes API's own schema (kubernetes-validate, offline, strict)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes_validate import utils as kv
from podspec_support import EXAMPLES, JOB_DIR, settings
from test_podspec_render import documents, render

from kgahp import workloads
from kgahp.errors import ConfigError
from kgahp.podspec.templates import QueueConfig, Templates, parse_queue_config

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "kg-x-0", "namespace": "batch",
                 "labels": {"app.kubernetes.io/managed-by": "kgahp",
                            "kgahp.htcondor.org/job": "kg-x", "kgahp.htcondor.org/attempt": "0"},
                 "annotations": {"kgahp.htcondor.org/restarts": "0"},
                 "finalizers": ["kgahp.htcondor.org/collect"]},
    "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 600,
             "containers": [{"name": "job", "image": "busybox:1.36"}]},
}


def test_job_wraps_exactly_the_pod() -> None:
    before = copy.deepcopy(POD)
    job = workloads.job_manifest(POD)
    assert POD == before                         # pure: the pod is not touched
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"] == {"name": "kg-x-0", "namespace": "batch",
                               "labels": POD["metadata"]["labels"],
                               "annotations": POD["metadata"]["annotations"]}
    template = job["spec"]["template"]
    assert template["spec"] == POD["spec"]
    assert template["metadata"] == {k: POD["metadata"][k]
                                    for k in ("labels", "annotations", "finalizers")}
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 0)
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == workloads.JOB_TTL_SAFETY_NET
    assert "managedBy" not in spec and "suspend" not in spec
    kv.validate(job, kv.latest_version(), strict=True)


def test_no_deadline_without_batch_runtime_and_multikueue_fields() -> None:
    pod = copy.deepcopy(POD)
    del pod["spec"]["activeDeadlineSeconds"]
    job = workloads.job_manifest(pod, multikueue=True)
    assert "activeDeadlineSeconds" not in job["spec"]
    assert job["spec"]["managedBy"] == "kueue.x-k8s.io/multikueue"
    assert job["spec"]["suspend"] is True
    kv.validate(job, kv.latest_version(), strict=True)


def test_attempt_name_and_owner_of_a_jobs_pod() -> None:
    pod = {"metadata": {"name": "kg-x-0-abcde", "ownerReferences": [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "kg-x-0", "uid": "u1",
         "controller": True}]}}
    assert workloads.attempt_name(pod) == "kg-x-0"
    assert workloads.attempt_name(POD) == "kg-x-0"
    assert workloads.owner_job(POD) is None
    assert workloads.job_owner_reference({"metadata": {"name": "kg-x-0", "uid": "u1"}}) == {
        "apiVersion": "batch/v1", "kind": "Job", "name": "kg-x-0", "uid": "u1",
        "blockOwnerDeletion": False}


def test_queue_workload_and_knob_default() -> None:
    queues = parse_queue_config({"queues": {
        "j": {"workload": "job"}, "p": {"workload": "pod"}, "d": {},
        "mk": {"kueueQueue": "lq", "multikueue": True}}}, "q.yaml")
    assert queues["mk"] == QueueConfig(kueue_queue="lq", workload="job", multikueue=True)
    templates = Templates(queues=queues)
    pod_mode = settings()
    job_mode = replace(pod_mode, pod=replace(pod_mode.pod, workload="job"))
    assert [workloads.workload_for(q, pod_mode, templates) for q in ("j", "p", "d", None)] == \
        ["job", "pod", "pod", "pod"]
    assert [workloads.workload_for(q, job_mode, templates) for q in ("j", "p", "d", None)] == \
        ["job", "pod", "job", "job"]
    assert workloads.uses_jobs(pod_mode, templates)
    assert not workloads.uses_jobs(pod_mode, Templates(queues={"p": queues["p"]}))
    assert workloads.uses_jobs(job_mode, Templates())


@pytest.mark.parametrize(("entry", "says"), [
    ({"workload": "jobs"}, "neither 'pod' nor 'job'"),
    ({"multikueue": "yes", "kueueQueue": "lq"}, "true or false"),
    ({"multikueue": True}, "needs kueueQueue"),
    ({"multikueue": True, "kueueQueue": "lq", "workload": "pod"}, "needs workload: job"),
])
def test_bad_queue_settings_are_refused(entry: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_queue_config({"queues": {"q": entry}}, "q.yaml")


def test_render_of_a_job_mode_queue_shows_the_job(tmp_path: Path) -> None:
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  mk: {kueueQueue: lq-a, multikueue: true}\n")
    (tmp_path / "in.txt").write_text("x\n")
    ad = tmp_path / "job.ad"
    ad.write_text(f'[ Cmd = "/bin/echo"; Iwd = "{tmp_path}"; KubernetesImage = "busybox:1.36"; '
                  f'JobDirectory = "{JOB_DIR}"; Queue = "mk"; BatchRuntime = 60; '
                  f'TransferInput = "in.txt" ]')
    docs = documents(render([str(ad)], QUEUE_CONFIG=str(queues)))
    job, secret = docs[0], docs[1]
    assert job["kind"] == "Job" and job["spec"]["managedBy"] == "kueue.x-k8s.io/multikueue"
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lq-a"
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["name"] == "job"
    assert secret["kind"] == "Secret"
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Job", job["metadata"]["name"])
    kv.validate(job, kv.latest_version(), strict=True)


def test_job_mode_role_grants_what_kube_jobs_uses() -> None:
    """`kgahp check` asks for JOB_PERMISSIONS in job mode; deploy/rbac-job-mode.yaml grants
    them, and they are exactly the verbs of kgahp/kube/jobs.py's calls."""
    import inspect
    import re

    import yaml

    from kgahp.kube import jobs as jobapi

    source = inspect.getsource(jobapi)
    used = {"create"} if '"POST", _path(namespace)' in source else set()
    if re.search(r'"GET", _path\(namespace, name\)', source):
        used.add("get")
    if re.search(r'"DELETE", _path\(namespace, name\)', source):
        used.add("delete")
    if "kube.watch_all(_path(namespace)" in source:
        used.add("watch")
    if "kube.list_all(_path(namespace)" in source:     # the paged list
        used.add("list")
    assert used == {verb for verb, _, _ in jobapi.JOB_PERMISSIONS}
    role = next(d for d in yaml.safe_load_all(
        (EXAMPLES.parent / "deploy" / "rbac-job-mode.yaml").read_text()) if d["kind"] == "Role")
    granted = {v for rule in role["rules"] if rule["apiGroups"] == ["batch"]
               and "jobs" in rule["resources"] for v in rule["verbs"]}
    assert used <= granted
