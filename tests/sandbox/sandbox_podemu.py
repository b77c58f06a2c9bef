"""Run a decorated pod locally, without a cluster: the kubelet's part played by subprocesses.

Secret items are materialised the way the kubelet does it (files under `..data/`, top-level
symlinks into it), emptyDirs become directories, the init containers run, then the main container's
exact command, args and env; its merged stdout+stderr is the "log". Only KGAHP_INPUT (the Secret
mount) is rewritten: tests put sandbox_path and Iwd on local temp paths already.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kgahp.sandbox.decorate import INPUT_MOUNT, INPUT_VOLUME


@dataclass
class PodRun:
    log: str
    exit_code: int
    init_exit_codes: list[int]


def materialise_secret(pod: dict, secret: dict, input_dir: Path) -> None:
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == INPUT_VOLUME)
    data_dir = input_dir / "..data"
    for item in volume["secret"]["items"]:
        target = data_dir / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
        os.chmod(target, item["mode"])
        top = item["path"].split("/")[0]
        link = input_dir / top
        if not link.is_symlink():
            link.symlink_to(Path("..data") / top)


def _env(container: dict, input_dir: Path) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for e in container.get("env", []):
        env[e["name"]] = e["value"]
    if env.get("KGAHP_INPUT") == INPUT_MOUNT:
        env["KGAHP_INPUT"] = str(input_dir)
    return env


def _argv(container: dict) -> list[str]:
    return list(container.get("command", [])) + list(container.get("args", []))


def _empty_dirs(pod: dict) -> None:
    names = {v["name"] for v in pod["spec"].get("volumes", []) if "emptyDir" in v}
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] in names:
                Path(mount["mountPath"]).mkdir(parents=True, exist_ok=True)


def start_main(pod: dict, input_dir: Path) -> subprocess.Popen:
    job = next(c for c in pod["spec"]["containers"] if c["name"] == "job")
    return subprocess.Popen(_argv(job), env=_env(job, input_dir), cwd=job.get("workingDir"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def run_init(pod: dict, secret: Optional[dict], input_dir: Path) -> list[int]:
    input_dir.mkdir(parents=True, exist_ok=True)
    if secret is not None:
        materialise_secret(pod, secret, input_dir)
    _empty_dirs(pod)
    codes = []
    for init in pod["spec"].get("initContainers", []):
        done = subprocess.run(_argv(init), env=_env(init, input_dir), timeout=30,
                              stdin=subprocess.DEVNULL, capture_output=True)
        codes.append(done.returncode)
    return codes


def run_pod(pod: dict, secret: Optional[dict], input_dir: Path, timeout: float = 30) -> PodRun:
    init_codes = run_init(pod, secret, input_dir)
    if any(init_codes):
        return PodRun("", -1, init_codes)
    proc = start_main(pod, input_dir)
    out, _ = proc.communicate(timeout=timeout)
    return PodRun(out.decode("utf-8", "replace"), proc.returncode, init_codes)


def terminate(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
