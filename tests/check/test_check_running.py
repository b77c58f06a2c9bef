"""`kgahp check` tells whether the running GAHP still uses the configuration as it is now:
knobs are read once per GAHP start, and an admin cannot otherwise see which values are in force."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgahp.check_local import INFO, OK, WARN, check_running_gahp, knob_sources, running_file
from kgahp.config import settings_from_mapping


def _environ(state: Path, qps: str) -> dict[str, str]:
    return {"_CONDOR_KGAHP_STATE_DIR": str(state), "_CONDOR_KGAHP_QPS": qps,
            "_CONDOR_KGAHP_INSTANCE": "chk",
            "_CONDOR_KGAHP_KUBECONFIG": str(state.parent / "no-kubeconfig")}


def test_running_gahp_against_the_configuration_now(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "htcondor2", None)
    state = tmp_path / "state"
    environ = _environ(state, "5")
    settings = settings_from_mapping({"STATE_DIR": str(state), "INSTANCE": "chk"})
    values, _ = knob_sources(environ)
    assert check_running_gahp(settings, values).status == INFO      # none has run yet

    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    env.update(environ)
    gahp = subprocess.Popen([sys.executable, "-m", "kgahp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert gahp.stdout is not None and gahp.stdout.readline().startswith(b"$GahpVersion")
        record = Path(running_file(settings))
        deadline = time.monotonic() + 20
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        result = check_running_gahp(settings, values)
        assert result.status == OK and result.data["pid"] == gahp.pid

        changed, _ = knob_sources(_environ(state, "7"))
        result = check_running_gahp(settings, changed)
        assert result.status == WARN and result.data["changed"] == ["QPS"]
        assert "KGAHP_QPS" in result.detail and result.fix.startswith(f"kill {gahp.pid}")
    finally:
        assert gahp.stdin is not None
        gahp.stdin.close()
        gahp.wait(timeout=30)
    result = check_running_gahp(settings, values)
    assert result.status == INFO and "has exited" in result.detail
