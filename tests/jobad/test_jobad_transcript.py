"""Every BLAH_JOB_SUBMIT a real HTCondor 25.0.13 gridmanager sent parses to the expected request.

The ads are taken from tests/data/transcripts/gridmanager-25.0.13.txt and un-escaped with the
gridmanager's rule (docs/protocol.md: a backslash takes the next character literally,
an unescaped space separates arguments).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kgahp.jobad import parse_submit_ad

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPT = DATA / "transcripts" / "gridmanager-25.0.13.txt"
SUBMIT_LINE = re.compile(r"GM->GAHP (BLAH_JOB_SUBMIT .*)$")


def gahp_split(line: str) -> list[str]:
    """The gridmanager's argument splitter (gahp-client.cpp 444-630), for one line."""
    tokens: list[str] = []
    current: list[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "\r":
            continue
        elif char == " ":
            tokens.append("".join(current))
            current = []
        else:
            current.append(char)
    tokens.append("".join(current))
    return tokens


def submitted_ads() -> dict[str, str]:
    """JobDirectory suffix (cluster.proc) -> ad text, for every submit in the transcript."""
    ads: dict[str, str] = {}
    for line in TRANSCRIPT.read_text().splitlines():
        match = SUBMIT_LINE.search(line)
        if match:
            command, _reqid, ad = gahp_split(match.group(1))
            assert command == "BLAH_JOB_SUBMIT"
            job = re.search(r"_vm_(\d+\.\d+)_", ad)
            assert job is not None
            ads.setdefault(job.group(1), ad)  # 3.0 was submitted twice, identically
    return ads


COMMON: dict[str, Any] = {
    "iwd": "/home/gridtest/jobs", "stdin": None, "stage_cmd": True, "x509userproxy": None,
    "namespace": None, "transfer_output": None, "output_remaps": (), "disk_kib": None,
    "whole_node": False, "gpu_model": None,
}

EXPECTED: dict[str, dict[str, Any]] = {
    "1.0": {"cmd": "/bin/echo", "arguments": ("hello", "from", "grid", "universe"),
            "environment": (("BAZ", "qux"), ("FOO", "bar")), "stdout": "echo.1.0.out",
            "stderr": "echo.1.0.err", "memory_mib": 512, "image": "busybox:remote",
            "cpus": 1, "cpus_explicit": False, "gpus": 0, "ce_attributes": {}},
    "2.0": {"cmd": "/bin/echo", "arguments": ("rich", "job"), "environment": (),
            "stdout": "rich.2.0.out", "image": "python:3.12", "cpus": 4, "cpus_explicit": True,
            "memory_mib": 2048, "gpus": 1, "runtime_seconds": 600, "queue": "myqueue",
            "project": "myproject", "transfer_input": ("rich.sub",),
            "extra_submit_args": "--foo=bar",
            "ce_attributes": {"KubernetesImage": "python:3.12", "RequestCpus": 4}},
    "3.0": {"cmd": "/bin/sleep", "arguments": ("3600",), "environment": (), "memory_mib": 128,
            "image": None, "cpus": 1, "queue": None, "runtime_seconds": None},
    "4.0": {"arguments": ("exit", "code", "test", "DUMMY_EXIT=42"), "memory_mib": None,
            "stdout": "edge.4.0.out"},
    "4.1": {"arguments": ("DUMMY_FAIL_SUBMIT",), "stderr": "edge.4.1.err"},
    "6.0": {"cmd": "/bin/sleep", "arguments": ("3600",), "stdout": "sleep.6.0.out"},
    "7.0": {"arguments": ("hello", "from", "grid", "universe"), "image": "busybox:remote",
            "environment": (("BAZ", "qux"), ("FOO", "bar"))},
}


def test_every_submitted_job_is_covered() -> None:
    assert sorted(submitted_ads()) == sorted(EXPECTED)


@pytest.mark.parametrize("job", sorted(EXPECTED))
def test_transcript_ad(job: str) -> None:
    ad = submitted_ads()[job]
    request = parse_submit_ad(ad)
    assert request.job_directory.startswith("home_bl_127.0.0.1_19618_gridtest_vm_" + job + "_")
    for field, expected in {**COMMON, **EXPECTED[job]}.items():
        assert getattr(request, field) == expected, field
    assert request.attributes["gridresource"] == "batch kubernetes"
