"""kgahp's JobStatus and hold codes agree with HTCondor's, read from the installed bindings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kgahp import lifecycle, model
from kgahp.codes import HoldCode, JobStatus

htcondor2 = pytest.importorskip("htcondor2")


def _condor_hold_codes() -> dict[str, int]:
    """CONDOR_HOLD_CODE as compiled into the bindings' libcondor_utils (its enum-to-string
    table: `Unspecified = 0,UserRequest = 1,...`)."""
    libs = Path(htcondor2.__file__).resolve().parent.parent / "htcondor.libs"
    for lib in sorted(libs.glob("libcondor_utils*.so*")):
        data = lib.read_bytes()
        start = data.find(b"Unspecified = 0,UserRequest = 1,")
        if start >= 0:
            table = data[start:data.index(b"\0", start)].decode()
            return {m.group(1): int(m.group(2))
                    for m in re.finditer(r"(\w+) = (\d+)", table)}
    pytest.fail(f"no hold code table found in {libs}")


def test_job_status_names_and_values_are_htcondors() -> None:
    theirs = {m.name: int(m.value) for m in htcondor2.JobStatus}
    ours = {m.name: int(m.value) for m in JobStatus}
    assert ours == theirs


def test_hold_codes_are_htcondors() -> None:
    theirs = _condor_hold_codes()
    assert theirs["SystemPolicy"] == 26   # the table was read
    for code in HoldCode:
        assert theirs.get(code.name) == code.value, code


def test_the_model_and_lifecycle_use_the_enums() -> None:
    assert model.HELD is JobStatus.HELD and model.COMPLETED is JobStatus.COMPLETED
    assert lifecycle.HOLD_SYSTEM_POLICY is HoldCode.SystemPolicy
    assert f"{model.RUNNING}" == "2" and str(model.REMOVED) == "3"   # as HTCondor writes them
