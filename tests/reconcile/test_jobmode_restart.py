"""Job mode right after a (re)start: the pod watch can deliver a pod before the Job cache has
listed its namespace. A pod that the Job controller stopped (a Kueue eviction suspended its Job)
must still be judged with its Job, read from the API, not as a pod deleted by someone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import client

from kgahp import lifecycle
from kgahp.config import settings_from_mapping
from kgahp.jobmode import JobMode
from kgahp.kube import jobs as jobapi
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client
from kgahp.lifecycle import Action
from kgahp.model import REMOVED


def _stopped_pod(job: dict) -> dict:
    """The Job's pod as the Job controller left it after the suspension: deleted, killed."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "metadata": {"name": job["metadata"]["name"] + "-abcde", "namespace": "default",
                     "uid": "pod-uid-1", "creationTimestamp": "2020-01-01T00:00:00Z",
                     "deletionTimestamp": now, "deletionGracePeriodSeconds": 0,
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                          "name": job["metadata"]["name"],
                                          "uid": job["metadata"]["uid"], "controller": True}]},
        "spec": {"nodeName": "sim-node-1", "containers": [{"name": "job", "image": "x"}]},
        "status": {"phase": "Failed", "containerStatuses": [{
            "name": "job", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"terminated": {"exitCode": 143, "reason": "Error",
                                     "startedAt": "2020-01-01T00:00:01Z",
                                     "finishedAt": now}}}]}}


def test_an_unsynced_job_cache_reads_the_pods_job(sim: Any, sim_kubeconfig: str,
                                                  tmp_path: Path) -> None:
    settings = settings_from_mapping({"KUBECONFIG": sim_kubeconfig, "QPS": "0",
                                      "STATE_DIR": str(tmp_path)}, user="t")
    kube = Kube(api_client(settings.kube), settings.kube)
    job = jobapi.create_job(kube, "default", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "restart-evicted"},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "job", "image": "x"}]}}}})
    pod = _stopped_pod(job)
    now = time.time()
    verdict = lifecycle.classify(pod, now=now, settings=settings.lifecycle,
                                 main_container="job", ever_started=True)
    assert verdict.state.job_status == REMOVED        # the pod alone: deleted by someone

    mode = JobMode.build(kube, ("default",), "app=none", resync_interval=60.0)   # not started
    assert not mode.cache.is_synced("default")
    amended = mode.amend(pod, verdict, now=now, settings=settings.lifecycle,
                         main_container="job")
    assert amended.action is Action.RECREATE, amended
    assert amended.state.job_status != REMOVED
    assert "suspended" in amended.reason

    other = dict(pod, metadata=dict(pod["metadata"], ownerReferences=[
        dict(pod["metadata"]["ownerReferences"][0], uid="another-job")]))
    later = mode.amend(other, verdict, now=now, settings=settings.lifecycle,
                       main_container="job")     # a later Job of the same name: its own is gone
    assert later.state.job_status == REMOVED and later.action == verdict.action
    assert (later.state.remove_reason or "").startswith(
        "Job default/restart-evicted was deleted by someone other than kgahp"), later


def test_a_pod_deleted_with_its_job_names_the_job(sim: Any, sim_kubeconfig: str,
                                                  tmp_path: Path) -> None:
    """kubectl delete job: while the Job is there the reason speaks of the pod; once a read
    of the Job answers 404 (Background) or shows it being deleted (Foreground), of the Job.
    Removed either way."""
    settings = settings_from_mapping({"KUBECONFIG": sim_kubeconfig, "QPS": "0",
                                      "STATE_DIR": str(tmp_path)}, user="t")
    kube = Kube(api_client(settings.kube), settings.kube)
    mode = JobMode.build(kube, ("default",), "app=none", resync_interval=60.0)   # not started
    for policy in ("Background", "Foreground"):
        name = f"deleted-{policy.lower()}"
        job = jobapi.create_job(kube, "default", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "job", "image": "x"}]}}}})
        pod = _stopped_pod(job)
        now = time.time()
        verdict = lifecycle.classify(pod, now=now, settings=settings.lifecycle,
                                     main_container="job", ever_started=True)
        assert verdict.state.job_status == REMOVED
        there = mode.amend(pod, verdict, now=now, settings=settings.lifecycle,
                           main_container="job")
        assert there == verdict, there                # the Job is there: the pod's wording
        assert (there.state.remove_reason or "").startswith(f"Pod default/{name}-abcde ")
        client.BatchV1Api(sim.api_client()).delete_namespaced_job(
            name, "default", propagation_policy=policy)
        amended = mode.amend(pod, verdict, now=now, settings=settings.lifecycle,
                             main_container="job")
        assert amended.state.job_status == REMOVED and amended.final is None, amended
        assert (amended.state.remove_reason or "").startswith(
            f"Job default/{name} was deleted by someone other than kgahp"), amended
        assert f"its pod default/{name}-abcde" in (amended.state.remove_reason or "")
