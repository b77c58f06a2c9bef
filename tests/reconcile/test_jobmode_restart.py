"""Job mode right after a (re)start: the pod watch can deliver a pod before the Job cache has
listed its namespace. A pod that the Job controller stopped (a Kueue eviction suspended its Job)
must still be judged with its Job, read from the API, not as a pod deleted by someone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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
    assert mode.amend(other, verdict, now=now, settings=settings.lifecycle,
                      main_container="job") is verdict     # a later Job of the same name
