"""`benchmarks/run.py --kubeconfig`: the branch for any cluster, exercised against a `kgahp sim`
started on its own (so nothing the benchmark knows about the built-in simulator can help it).
Pods run a plain image's command; requests are counted in kgahp's own process; what only the
simulator can measure is reported as n/a; the limit is measured and the ratios come from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def separate_sim(tmp_path: Path) -> Iterator[str]:
    """`kgahp sim` in its own process, running real local processes for containers; yields the
    kubeconfig it wrote."""
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgahp", "sim", "--kubeconfig", str(kubeconfig), "--workdir",
         str(tmp_path / "simwork"), "--nodes", "2", "--cpu", "100", "--memory", "100Gi"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "kgahp sim did not start"
            time.sleep(0.2)
        yield str(kubeconfig)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _with_a_wrong_current_context(kubeconfig: str, path: Path) -> str:
    """The same cluster as context `bench`, while the current context names a dead server:
    whatever ignores --context fails."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    (good,) = doc["contexts"]
    doc["clusters"].append({"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}})
    doc["contexts"] = [{"name": "bench", "context": dict(good["context"])},
                       {"name": "dead", "context": {**good["context"], "cluster": "dead"}}]
    doc["current-context"] = "dead"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.timeout(240)
def test_kubeconfig_branch_with_the_limit(tmp_path: Path, separate_sim: str) -> None:
    out = tmp_path / "out"
    kubeconfig = _with_a_wrong_current_context(separate_sim, tmp_path / "kc-contexts")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--kubeconfig", kubeconfig,
         "--context", "bench",
         "--image", "busybox:1.36", "--image-command", "/bin/sleep 600", "--jobs", "12",
         "--limit-jobs", "12", "--life-jobs", "3", "--rate-jobs", "45", "--retry-jobs", "5",
         "--baseline-jobs", "0", "--paced-samples", "3", "--scale", "0", "--no-chart",
         "--out", str(out)],
        capture_output=True, text=True, timeout=230, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]     # 1 = a target missed
    results = json.loads((out / "results.json").read_text())
    meta = results["meta"]
    assert meta["cluster"] == "kubeconfig"
    # GET /version of that server, as the sim reports it
    from kgahp_sim.api import VERSION_INFO
    assert meta["server_version"] == VERSION_INFO["gitVersion"]
    assert meta["sleep_workload"] == "busybox:1.36 /bin/sleep 600"
    assert "client side" in meta["api_requests_counted_by"]
    assert meta["load_average_at_start"] >= 0 and meta["load_average_at_end"] >= 0

    life = results["job_life"]
    assert life["counted_by"] == "client" and life["pods_left"] == 0
    # per job life: create, the tracking finalizer's release, delete
    assert life["requests"] == {"create/pods/": 3, "patch/pods/": 3, "delete/pods/": 3}
    assert life["image"] == "busybox:1.36 /bin/sh -c 'sleep 2'"

    sub = results["scale"]["submit"]
    # the server's CPU is not known on a real cluster: never blamed
    assert sub["sim_cpu_ms_per_submit"] is None and sub["bottleneck"] != "sim"
    assert sub["api_requests_per_submit"] == 1
    assert results["scale"]["steps"][0]["burst"]["api_requests_per_status"] == 0
    assert results["scale"]["recovery"]["unanswered"] == 0

    lim = results["limit"]
    assert lim["jobs"] == 12 and lim["api_requests_per_submit"] == 1
    assert lim["sim_cpu_ms_per_submit"] is None and lim["server_requests_per_submit"] is None
    assert lim["per_second"] > 0 and lim["cpu_ms_per_submit"] > 0
    # the serial floor, in the named context too (a wrong current context would fail it)
    stages = results["stages"]
    assert stages["count"] == 12 and stages["pods"] == 24
    assert all(step["mean_ms"] > 0 for step in stages["steps"].values())
    head = results["headline"]
    assert head["submit_rate_vs_limit"] == pytest.approx(sub["per_second"] / lim["per_second"])
    assert head["cpu_per_submit_vs_limit"] == pytest.approx(
        sub["cpu_ms_per_submit"] / lim["cpu_ms_per_submit"])

    rate = results["rate_limit"]
    assert rate["server_requests"] is None and rate["requests"] >= 45
    assert rate["max_in_1s"] <= rate["allowed_in_1s"] + 1
    assert results["retry_after"] == {"measured": False,
                                      "why": "needs the simulator's fault injection"}

    text = (out / "results.txt").read_text()
    assert "kgahp/limit" in text
    assert f"{head['submit_rate_vs_limit']:.2f}" in text
    assert f"{head['cpu_per_submit_vs_limit']:.2f}" in text
    assert "sim CPU ms per pod" in text and "n/a" in text
    assert "429 Retry-After: n/a" in text


@pytest.mark.timeout(240)
def test_kubeconfig_branch_runs_the_scale_tiers(tmp_path: Path, separate_sim: str) -> None:
    """On any cluster the tier's jobs are submitted through the protocol (nothing can be
    seeded), over several namespaces it creates; the event part is reported as not measured."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--kubeconfig", separate_sim,
         "--image", "busybox:1.36", "--image-command", "/bin/sleep 600", "--phases", "tiers",
         "--scale", "16", "--namespaces", "2", "--no-chart", "--out", str(out)],
        capture_output=True, text=True, timeout=230, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    (row,) = results["tiers"]["tiers"]
    assert row["tracked"] == 16 and row["loaded_by"].startswith("submitted")
    rec = row["recovery"]
    assert rec["unanswered"] == 0 and rec["wrong_answers"] == 0 and rec["lists_paged"]
    # counted in kgahp's own process: one page per namespace and one watch per namespace
    assert rec["api_requests_by_kind"] == {"list/pods/": 2, "watch/pods/": 2}
    assert row["burst"]["api_requests_per_status"] == 0
    assert row["events"] == {"measured": False,
                             "why": "needs the simulator to end containers at chosen times"}
    assert "n/a" in (out / "results.txt").read_text()
