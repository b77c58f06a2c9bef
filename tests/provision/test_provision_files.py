"""What an admin installs and reads: the shapes YAML and its errors, the CLI's refusals, the
condor_master snippet, the in-cluster Deployment and the docs page's knob table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from provision_support import SHAPES_YAML

from kgahp.config import KNOBS, PREFIX, settings_from_mapping
from kgahp.errors import ConfigError
from kgahp.podspec import load_templates
from kgahp.provision.pilots import pilot_pod
from kgahp.provision.shapes import load_shapes, parse_shapes
from kgahp.testing import condor_env

REPO = Path(__file__).resolve().parents[2]
PROVISION_KNOBS = {k.name: k for k in KNOBS if k.section == "provision"}

BAD = [
    ({"shapes": {}}, "at least one shape"),
    ({"shapes": {"Big_One": {}}}, "lower-case"),
    ({"shapes": {"a": {"cpu": 4}}}, "unknown keys cpu"),
    ({"shapes": {"a": {"cpus": -1}}}, "cpus must be a number >= 0"),
    ({"shapes": {"a": {"memory": "lots"}}}, "is not a quantity"),
    ({"shapes": {"a": {"start": "TARGET.RequestGPUs >="}}}, "is not a ClassAd expression"),
    ({"shapes": {"a": {"start": "true; Evil = 1"}}}, "is not a ClassAd expression"),
    ({"shapes": {"a": {"maxPilots": "ten"}}}, "maxPilots must be a whole number"),
    ({"shapes": {"a": {"attributes": {"1x": 2}}}}, "not a ClassAd attribute name"),
    ({"shapes": {"a": {"command": "x"}}, "extra": 1}, "expected a mapping"),
]


@pytest.mark.parametrize("data, words", BAD, ids=[w for _, w in BAD])
def test_bad_shapes_are_refused_with_the_place_named(data: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse_shapes(data, "shapes.yaml")


def test_memory_and_disk_read_as_an_admin_writes_them() -> None:
    [shape] = parse_shapes({"defaults": {"queue": "pilots"},
                            "shapes": {"a": {"memory": "8Gi", "disk": 4096}}}, "s.yaml")
    assert (shape.memory_mib, shape.disk_mib, shape.queue) == (8192, 4096, "pilots")


def _run(*args: str, **knobs: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgahp", "provision", *args],
                          env=condor_env(knobs), capture_output=True, text=True, timeout=60)


def test_without_shapes_it_says_which_knob_to_set(tmp_path: Path) -> None:
    done = _run("--once", "--dry-run", KUBECONFIG=str(tmp_path / "none"))
    assert done.returncode == 1
    assert "KGAHP_PROVISION_SHAPES is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_snapshot_is_one_sentence(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.yaml"
    shapes.write_text(yaml.safe_dump(SHAPES_YAML))
    jobs = tmp_path / "jobs.ads"
    jobs.write_text("this is [ not a ClassAd\n")
    done = _run("--once", "--dry-run", "--jobs", str(jobs), "--shapes", str(shapes),
                KUBECONFIG=str(tmp_path / "none"))
    assert done.returncode == 1
    assert str(jobs) in done.stderr and "Traceback" not in done.stderr


def test_the_condor_master_snippet_names_real_knobs() -> None:
    text = (REPO / "condor_config.d" / "60-kgahp-provision.conf.example").read_text()
    assert re.search(r"^DAEMON_LIST = \$\(DAEMON_LIST\) KGAHP_PROVISIONER$", text, re.M)
    assert re.search(r"^KGAHP_PROVISIONER_ARGS = provision$", text, re.M)
    named = set(re.findall(r"^#?KGAHP_([A-Z_]+) =", text, re.M)) - {"PROVISIONER",
                                                                     "PROVISIONER_ARGS"}
    assert named and named <= {k.name for k in KNOBS}


def test_the_docs_page_lists_every_provision_knob_with_its_default() -> None:
    text = (REPO / "docs" / "pilots-on-demand.md").read_text()
    rows = dict(re.findall(r"^\| `KGAHP_(PROVISION_[A-Z_]+)` \| ([^|]+) \|", text, re.M))
    assert set(rows) == set(PROVISION_KNOBS)
    for name, shown in rows.items():
        default = PROVISION_KNOBS[name].default
        assert shown.strip().strip("`") == (default or "(empty)"), name


def _deploy_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(
        (REPO / "deploy" / "provision" / "deployment.yaml").read_text()) if d]


def test_the_deployment_is_bound_to_a_role_deploy_defines() -> None:
    # its schema is checked with every other manifest in tests/deploy
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in yaml.safe_load_all(
        (REPO / "deploy" / "rbac.yaml").read_text()) if d and d["kind"] == "Role"}
    [binding] = [d for d in _deploy_docs() if d["kind"] == "RoleBinding"]
    assert (binding["metadata"]["namespace"], binding["roleRef"]["name"]) in roles


def test_the_deployments_config_builds_pilots_within_policy(tmp_path: Path) -> None:
    [config] = [d for d in _deploy_docs() if d["kind"] == "ConfigMap"]
    [deployment] = [d for d in _deploy_docs() if d["kind"] == "Deployment"]
    for key, text in config["data"].items():
        (tmp_path / key).write_text(text)
    env = {e["name"]: e.get("value", "") for e in
           deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    knobs = {k[len("_CONDOR_KGAHP_"):]: v for k, v in env.items()
             if k.startswith("_CONDOR_KGAHP_") and k != "_CONDOR_KGAHP_KUBECONFIG"}
    knobs["QUEUE_CONFIG"] = str(tmp_path / "queues.yaml")
    knobs["PROVISION_SHAPES"] = str(tmp_path / "shapes.yaml")
    settings = settings_from_mapping(knobs)
    templates = load_templates(settings.pod)
    for shape in load_shapes(settings.provision.shapes):
        pod = pilot_pod(shape, settings, templates, suffix="t")
        assert pod["metadata"]["namespace"] == "osg-pilots"
        assert pod["spec"]["priorityClassName"] == "pilots"
        assert f"{PREFIX}" not in str(pod["metadata"]["name"])
        # no GAHP collects a pilot: the tracking finalizer would keep a deleted one for ever
        assert "finalizers" not in pod["metadata"]


def test_without_a_reachable_schedd_the_cycle_fails_in_one_sentence(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.yaml"
    shapes.write_text(yaml.safe_dump(SHAPES_YAML))
    done = _run("--once", "--dry-run", "--shapes", str(shapes),
                KUBECONFIG=str(tmp_path / "none"))
    assert done.returncode == 1
    assert "kgahp provision: querying idle jobs failed" in done.stderr
    assert "Traceback" not in done.stderr
