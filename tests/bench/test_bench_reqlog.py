"""The client-side request log the benchmarks count kgahp's API requests with on any cluster:
its keys must be the simulator's (so both counts compare), and the 429 waits must be per thread."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import reqlog
from benchmarks.target import Workload
from kgahp.jobad.arglist import split_v2


def test_classify_names_requests_as_the_sim_counts_them() -> None:
    c = reqlog.classify
    assert c("POST", "/api/v1/namespaces/default/pods") == "create/pods/"
    assert c("DELETE", "/api/v1/namespaces/default/pods/j-1?gracePeriodSeconds=0") == \
        "delete/pods/"
    assert c("DELETE", "/api/v1/namespaces/ns/secrets?labelSelector=a%3Db") == \
        "deletecollection/secrets/"
    assert c("GET", "/api/v1/namespaces/ns/pods?labelSelector=x&limit=500") == "list/pods/"
    assert c("GET", "/api/v1/namespaces/ns/pods?watch=True&resourceVersion=5") == "watch/pods/"
    assert c("GET", "/api/v1/namespaces/ns/pods/p-1/log?container=job") == "get/pods/log"
    assert c("PATCH", "/api/v1/namespaces/ns/secrets/s") == "patch/secrets/"
    assert c("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") == \
        "create/selfsubjectaccessreviews/"
    assert c("GET", "/version/") == "get//version/"


def test_read_skips_cut_lines_and_orders_by_send_time(tmp_path: Path) -> None:
    log = tmp_path / "requests.1.log"
    log.write_text("2.0 2.1 7 POST 201 /api/v1/namespaces/d/pods\n"
                   "1.0 1.2 8 GET 200 /version/\n"
                   "3.0 3.1 7 POST 2")                        # cut by SIGKILL
    got = reqlog.read([str(log), str(tmp_path / "missing.log")])
    assert [(r.sent, r.key) for r in got] == [(1.0, "get//version/"), (2.0, "create/pods/")]


def test_waits_after_429_are_measured_per_thread() -> None:
    R = reqlog.Request
    requests = [R(0.0, 0.1, 1, "POST", 429, "/p"), R(0.05, 0.15, 2, "POST", 201, "/p"),
                R(0.2, 0.3, 2, "POST", 201, "/p"),       # thread 2 was never refused
                R(2.3, 2.4, 1, "POST", 201, "/p"),       # thread 1 retried 2.2 s later
                R(2.5, 2.6, 3, "POST", 429, "/p")]       # no retry logged: left out
    assert reqlog.waits_after(requests) == [2.3 - 0.1]


def test_max_in_window() -> None:
    assert reqlog.max_in_window([0.0, 0.5, 0.9, 1.2, 3.0], 1.0) == 3
    assert reqlog.max_in_window([], 1.0) == 0


def test_counted_kgahp_logs_each_request_of_the_official_client(tmp_path: Path,
                                                                 sim_kubeconfig: str) -> None:
    """The wrapper sees what the official client sends (here: a version read and a list)."""
    log = tmp_path / "requests.log"
    script = (
        "import sys, runpy\n"
        "sys.argv = ['x']\n"
        "import benchmarks.counted_kgahp as c\n"
        f"c.install({str(log)!r})\n"
        "from kubernetes import client, config\n"
        f"api = config.new_client_from_config(config_file={sim_kubeconfig!r})\n"
        "client.VersionApi(api).get_code()\n"
        "client.CoreV1Api(api).list_namespaced_pod('default', _preload_content=False)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60,
                   cwd=str(Path(__file__).resolve().parents[2]))
    got = reqlog.read([str(log)])
    assert [(r.key, r.status) for r in got] == [("get//version/", 200), ("list/pods/", 200)]


def test_workload_commands_become_v2_arguments() -> None:
    w = Workload.from_command("busybox:1.36", "/bin/sh -c 'sleep 2'")
    assert (w.cmd, split_v2(w.arguments)) == ("/bin/sh", ("-c", "sleep 2"))
    w = Workload.from_command("x", "/bin/echo \"it's\" ''")
    assert split_v2(w.arguments) == ("it's", "")
    assert Workload.from_command("registry.k8s.io/pause:3.10", "/pause").arguments == ""
