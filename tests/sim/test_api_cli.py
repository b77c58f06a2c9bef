"""`kgahp sim` as a process: ready line on stderr, kubeconfig usable by the official client,
clean exit on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from kubernetes import client, config


def test_kgahp_sim_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgahp", "sim", "--nodes", "3", "--cpu", "4", "--gpus", "1",
         "--workdir", str(tmp_path / "work"), "--kubeconfig", str(kubeconfig)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("kgahp sim: serving Kubernetes API v1.36 at http://127.0.0.1:")
        assert line.rstrip().endswith(f"kubeconfig written to {kubeconfig}")
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        nodes = api.list_node().items
        assert [n.metadata.name for n in nodes] == ["sim-node-1", "sim-node-2", "sim-node-3"]
        assert nodes[0].status.allocatable["nvidia.com/gpu"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""  # stdout stays silent
    finally:
        if proc.poll() is None:
            proc.kill()


def test_root_images_are_given_on_the_command_line() -> None:
    from kgahp_sim.cli import parse_args

    args = parse_args(["--root-image", "busybox:*", "--root-image", "python:*"])
    assert args.root_image == ["busybox:*", "python:*"]
    assert parse_args([]).root_image == []
