"""The sim answers the calls `kgahp check` makes as the recorded v1.36 API server did:
SelfSubjectAccessReview (13a, 13b), SelfSubjectReview (13c) and a dry-run create (04),
each through kgahp.kube, the only door kgahp has to a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgahp.config import settings_from_mapping
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client

REC = Path(__file__).resolve().parents[1] / "data" / "k8s-recordings-v1.36"


def _recording(name: str) -> dict[str, Any]:
    return dict(json.loads((REC / f"{name}.json").read_text()))


def _kube(sim: Any, tmp_path: Path, *, restricted: bool = False) -> Kube:
    path = sim.write_kubeconfig(str(tmp_path / "kc"), restricted=restricted)
    settings = settings_from_mapping({"KUBECONFIG": path})
    return Kube(api_client(settings.kube), settings.kube, retry_deadline=5)


def test_ssar_as_recorded(sim: Any, tmp_path: Path) -> None:
    sim.require_sim("the restricted user is the sim's")
    for name, restricted in (("13a-ssar-create-pods-admin-201", False),
                             ("13b-ssar-create-pods-sim-user-201", True)):
        recorded = _recording(name)
        attrs = recorded["request"]["body"]["spec"]["resourceAttributes"]
        expected = recorded["response"]["body"]["status"]
        allowed, reason = _kube(sim, tmp_path, restricted=restricted).can_i(
            attrs["verb"], attrs["resource"], "default")
        assert allowed == expected["allowed"]
        assert reason == expected.get("reason", "")


def test_self_subject_review_as_recorded(sim: Any, tmp_path: Path) -> None:
    sim.require_sim("the restricted user is the sim's")
    recorded = _recording("13c-selfsubjectreview-whoami-sim-user-201")["response"]["body"]
    user = _kube(sim, tmp_path, restricted=True).whoami()
    assert user == recorded["status"]["userInfo"]["username"]


def test_dry_run_create_is_not_stored(sim: Any, tmp_path: Path) -> None:
    recorded = _recording("04-create-pod-dryrun-201-then-get-404")
    assert recorded["response"]["status"] == 201
    assert recorded["subsequent_get"]["response"]["status"] == 404
    pod = dict(recorded["request"]["body"])
    pod["metadata"] = {**pod["metadata"], "name": "check-dry-run"}
    kube = _kube(sim, tmp_path)
    assert kube.dry_run_pod("default", pod) == []
    assert kube.get_pod("default", "check-dry-run") is None
