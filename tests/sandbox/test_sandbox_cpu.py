"""The wrapper's CPU line (RemoteUserCpu/RemoteSysCpu): the real scripts run by this machine's
sh, with the container's cgroup directory pointed at a prepared stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from kgahp.sandbox import cpu_usage
from kgahp.sandbox.outputs import CpuUsage, make_frame
from kgahp.sandbox.wrapper import API_SCRIPT, CGROUP_ROOT, CPU, SHARED_SCRIPT, WRAPPER_NAME

BURN = ("import os, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < {seconds}: pass\n"
        "u = os.times()\n"
        "print(u.user + u.system)\n")


def run(script: str, cgroup: Path, sandbox: Path, payload: list[str]) -> tuple[str, int]:
    """The wrapper as the pod runs it, with CGROUP_ROOT rewritten to `cgroup`."""
    assert CGROUP_ROOT in script
    out = sandbox / ".kgahp-test-out"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KGAHP_SANDBOX": str(sandbox),
           "KGAHP_STDOUT": str(out), "KGAHP_STDERR": "/dev/null",
           "KGAHP_OUTPUTS": "", "KGAHP_OUTPUTS_DEFAULT": ""}
    done = subprocess.run(["sh", "-c", script.replace(CGROUP_ROOT, str(cgroup)), WRAPPER_NAME,
                           *payload], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout, done.returncode


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cgroup, sandbox = tmp_path / "cgroup", tmp_path / "sandbox"
    cgroup.mkdir()
    sandbox.mkdir()
    return cgroup, sandbox


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                  "nr_periods 0\n"}, CpuUsage(2.0, 0.5, "cgroup2")),
    ({"cpuacct/cpuacct.usage_user": "1500000000\n", "cpuacct/cpuacct.usage_sys": "250000000\n",
      "cpuacct/cpuacct.stat": "user 1\nsystem 1\n"}, CpuUsage(1.5, 0.25, "cgroup1")),
    ({"cpu,cpuacct/cpuacct.stat": "user 312\nsystem 7\n"}, CpuUsage(3.12, 0.07, "cgroup1")),
])
def test_the_containers_cgroup_is_read_after_the_payload(
        dirs: tuple[Path, Path], files: dict[str, str], expected: CpuUsage) -> None:
    cgroup, sandbox = dirs
    for name, text in files.items():
        (cgroup / name).parent.mkdir(parents=True, exist_ok=True)
        (cgroup / name).write_text(text)
    for script in (SHARED_SCRIPT, API_SCRIPT):
        log, code = run(script, cgroup, sandbox, ["sh", "-c", "exit 3"])
        assert code == 3
        assert cpu_usage(log) == expected, log


def test_without_a_cgroup_the_shell_measures_the_payload(dirs: tuple[Path, Path]) -> None:
    """What the simulator's local processes see (an empty cgroup directory), and the fallback of
    a runtime that hides the cgroup: `times`, the wrapper and every child it waited for."""
    cgroup, sandbox = dirs
    log, code = run(SHARED_SCRIPT, cgroup, sandbox,
                    [sys.executable, "-c", BURN.format(seconds=0.6)])
    assert code == 0
    usage = cpu_usage(log)
    assert usage is not None and usage.source == "times", log
    measured = float((sandbox / ".kgahp-test-out").read_text())   # the payload's own figure
    assert measured >= 0.6
    assert abs(usage.user + usage.system - measured) <= 0.2 * measured


def test_the_api_frame_follows_the_cpu_line(dirs: tuple[Path, Path]) -> None:
    cgroup, sandbox = dirs
    (cgroup / "cpu.stat").write_text("user_usec 10\nsystem_usec 20\n")
    log, _ = run(API_SCRIPT, cgroup, sandbox, ["true"])
    lines = log.splitlines()
    cpu = next(i for i, line in enumerate(lines) if line.startswith(CPU))
    assert lines[cpu + 1].startswith("KGAHP-OUTPUT-BEGIN")


@pytest.mark.parametrize(("log", "expected"), [
    ("KGAHP-CPU 1 times 0m0.010000s 0m0.000000s\n0m1.420000s 0m0.720000s\n",   # dash
     CpuUsage(1.43, 0.72, "times")),
    ("KGAHP-CPU 1 times 0m0.002s 0m0.000s\n1m2.253s 0m0.410s\n",               # bash, busybox
     CpuUsage(62.255, 0.41, "times")),
    ("KGAHP-CPU 1 times 0m0.002s 0m0.000s\n", None),                         # cut short
    ("KGAHP-CPU 1 cgroup2 7 9 usec\nKGAHP-CPU 1 cgroup2 2000000 1000000 usec\n",   # the last
     CpuUsage(2.0, 1.0, "cgroup2")),
    ("KGAHP-CPU 1 cgroup2 2000000 1000000 usec\n" + make_frame({})
     + "KGAHP-CPU 1 cgroup2 9000000 9000000 usec\n",            # after the frame: not the wrapper
     CpuUsage(2.0, 1.0, "cgroup2")),
    ("no line at all\n", None),
    ("KGAHP-CPU 2 cgroup2 1 1 usec\n", None),                # a version this kgahp cannot read
    ("KGAHP-CPU 1 cgroup2 lots 1 usec\n", None),
    ("KGAHP-CPU 1 cgroup2 -5 1 usec\n", None),
    ("KGAHP-CPU 1 times 0m0.1s\n0m0.1s\n", None),
    ("KGAHP-CPU 1 cgroup3 1 1 usec\n", None),
])
def test_cpu_lines_are_parsed_strictly(log: str, expected: Optional[CpuUsage]) -> None:
    assert cpu_usage(log) == expected
