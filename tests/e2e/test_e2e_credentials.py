"""A token rotated under a running kgahp: the real executable, a kubeconfig whose user reads a
projected-volume token file (as a CE in a pod has), the sim revoking the old token the moment
the file changes. No call may fail: submits, status and the watch carry on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kgahp.model import COMPLETED, RUNNING
from kgahp_sim.tokens import revoke, write_projected


def test_token_rotation_under_a_running_kgahp_loses_no_call(sim: Any, make_gahp: Any,
                                                            tmp_path: Path) -> None:
    sim.require_sim("issues, rotates and revokes tokens")
    sa = tmp_path / "serviceaccount"
    token = sim.issue_token(3600)
    write_projected(sa, {"token": token})
    doc = sim.kubeconfig_dict()
    doc["users"][0]["user"] = {"tokenFile": str(sa / "token")}
    kubeconfig = tmp_path / "kubeconfig-sa"
    kubeconfig.write_text(yaml.safe_dump(doc))
    gahp = make_gahp(KUBECONFIG=str(kubeconfig))
    first = gahp.submit("rot_1.0", KubernetesImage="sim.invalid/ok:2s")
    gahp.wait_status(first, {RUNNING})
    for round_ in range(3):                  # three rotations, each revoking the old token
        old, token = token, sim.issue_token(3600)
        write_projected(sa, {"token": token})
        sim.call(lambda old=old: revoke(sim.config, old))
        job = gahp.submit(f"rot_{round_ + 2}.0", KubernetesImage="sim.invalid/ok:300ms")
        _, ad = gahp.wait_status(job, {COMPLETED}, timeout=60)
        assert ad.eval("ExitCode") == 0
    _, ad = gahp.wait_status(first, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    log = gahp.log.read_text()
    assert "401 Unauthorized; retrying once" in log or "bearer token file" in log
    assert token not in log                   # secrets never reach the log
