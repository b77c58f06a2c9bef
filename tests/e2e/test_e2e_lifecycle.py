"""Every row of the lifecycle table (docs/job-states.md), end to end: a job ad in over the
protocol, a pod in the cluster, the status the gridmanager would read. Outcomes are real commands
in a real image (harness.TEST_IMAGE), so these run on the simulator (as local processes) and on
any cluster named by KGAHP_TEST_KUBECONFIG. Only what cannot be ordered on a real cluster
(eviction) is scripted through the simulator's image language (sim.invalid/...)."""

from __future__ import annotations

import pytest
import yaml
from harness import allocates_past_limit, exits, killed_by, sleeps, succeeds

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING


def test_success_reports_running_then_completed_exit_0(gahp):
    job_id = gahp.submit("row_ok_1.0", **succeeds(after=1))
    assert job_id.startswith("kubernetes/default/kg-")
    status, _ = gahp.status(job_id)
    assert status in (IDLE, RUNNING)      # never "unknown" for a job just submitted
    gahp.wait_status(job_id, {RUNNING})
    status, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 0
    assert ad.eval("ExitBySignal") is False
    assert "RemoteWallClockTime" not in ad
    assert ad.eval("WorkerNode") == gahp.node_of(job_id) != ""


def test_exit_code_is_reported(gahp):
    job_id = gahp.submit("row_exit_1.0", **exits(3))
    _, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 3
    assert ad.eval("ExitBySignal") is False


def test_signal_death_is_reported_as_signal(gahp):
    job_id = gahp.submit("row_sig_1.0", **killed_by("TERM"))
    _, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitBySignal") is True
    assert ad.eval("ExitSignal") == 15


def test_oom_kill_holds_with_memory_limit(gahp):
    job_id = gahp.submit("row_oom_1.0", **allocates_past_limit(100))
    _, ad = gahp.wait_status(job_id, {HELD})
    assert ad.eval("HoldReasonCode") == 34
    assert "100Mi" in ad.eval("HoldReason")


def test_oom_policy_signal_completes_by_signal_9(make_gahp):
    gahp = make_gahp(OOM_POLICY="signal")
    job_id = gahp.submit("row_oomsig_1.0", **allocates_past_limit(64))
    _, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitBySignal") is True and ad.eval("ExitSignal") == 9


def test_deadline_exceeded_holds_47(gahp):
    job_id = gahp.submit("row_deadline_1.0", **sleeps(), BatchRuntime=1)
    _, ad = gahp.wait_status(job_id, {HELD}, timeout=30)
    assert ad.eval("HoldReasonCode") == 47
    assert "1" in ad.eval("HoldReason")


def test_image_pull_error_holds_35_after_grace(gahp):
    # .invalid never resolves: a real kubelet's pull fails as the simulator's does on demand
    job_id = gahp.submit("row_pull_1.0", KubernetesImage="sim.invalid/pull-error")
    status, _ = gahp.status(job_id)
    assert status == IDLE
    _, ad = gahp.wait_status(job_id, {HELD}, timeout=30)
    assert ad.eval("HoldReasonCode") == 35
    reason = ad.eval("HoldReason")
    assert "sim.invalid/pull-error" in reason and "default/" in reason


def test_config_error_holds_6(make_gahp, tmp_path):
    """The admin's template takes an env var from a Secret that does not exist: the kubelet
    cannot build the container (CreateContainerConfigError) and the job is held."""
    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump({"spec": {"containers": [{"name": "job", "env": [
        {"name": "SITE_TOKEN", "valueFrom": {"secretKeyRef": {"name": "site-token-missing",
                                                              "key": "token"}}}]}]}}))
    gahp = make_gahp(POD_TEMPLATE=str(template))
    job_id = gahp.submit("row_cfg_1.0", **succeeds())
    _, ad = gahp.wait_status(job_id, {HELD}, timeout=30)
    assert ad.eval("HoldReasonCode") in (6, 13)
    assert "site-token-missing" in ad.eval("HoldReason")


def test_unschedulable_is_idle_then_held_past_pending_limit(make_gahp):
    gahp = make_gahp(PENDING_LIMIT="2")
    job_id = gahp.submit("row_unsched_1.0", **succeeds(), GPUNumber=1)  # a node without GPUs
    status, _ = gahp.status(job_id)
    assert status == IDLE
    _, ad = gahp.wait_status(job_id, {HELD}, timeout=30)
    assert ad.eval("HoldReasonCode") == 26
    assert "nvidia.com/gpu" in ad.eval("HoldReason")


def test_eviction_recreates_under_same_job_id(gahp):
    gahp.sim.require_sim("simulator only: a kubelet eviction cannot be ordered on a real cluster")
    job_id = gahp.submit("row_evict_1.0", KubernetesImage="sim.invalid/evict:301ms")
    _, ad = gahp.wait_status(job_id, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    assert ad.eval("NumRestarts") == 1
    base = job_id.split("/")[2]
    attempts = {p["metadata"]["name"][len(base) + 1:] for p in gahp.pods()
                if p["metadata"]["name"].startswith(base)}
    assert "1" in attempts and "2" not in attempts   # one new pod, not a storm of them

def test_pod_deleted_behind_kgahps_back_is_never_success(gahp):
    from kubernetes import client

    job_id = gahp.submit("row_vanish_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    core = client.CoreV1Api(gahp.sim.api_client())
    for pod in gahp.pods():
        core.delete_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                   grace_period_seconds=0)
    status, _ = gahp.wait_status(job_id, lambda s: s not in (IDLE, RUNNING), timeout=30)
    assert status == REMOVED


@pytest.mark.parametrize("job_id", ["kubernetes/default/kg-never-existed-abc", "kubernetes/nope"])
def test_unknown_job_is_not_success(gahp, job_id):
    code, _msg, status, _ad = gahp.driver.status(job_id)
    assert not (code == 0 and status == COMPLETED)


def test_volume_that_cannot_be_mounted_holds_with_the_kubelets_message(make_gahp, tmp_path):
    """The admin's template mounts a ConfigMap that does not exist: the pod only stays
    ContainerCreating, and the reason is in its FailedMount event. kgahp reads it and holds
    the job (6) past KGAHP_CONFIG_ERROR_GRACE instead of leaving it idle forever."""
    template = tmp_path / "template.yaml"
    template.write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  restartPolicy: Never\n  containers:\n"
        "    - name: job\n      volumeMounts:\n        - {name: site, mountPath: /site}\n"
        "  volumes:\n    - name: site\n      configMap: {name: site-settings}\n")
    gahp = make_gahp(POD_TEMPLATE=str(template), CONFIG_ERROR_GRACE="2")
    job_id = gahp.submit("row_mount_1.0", **succeeds())
    _, ad = gahp.wait_status(job_id, {HELD}, timeout=45)
    assert ad.eval("HoldReasonCode") == 6
    assert 'configmap "site-settings" not found' in ad.eval("HoldReason")
