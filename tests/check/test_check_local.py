"""`kgahp check`'s host-side checks: permissions as another user sees them, knob sources,
images, private directories. Each check is shown passing and failing."""

from __future__ import annotations

import os
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgahp.check_local import (
    CONFIG,
    DEFAULT,
    ENVIRONMENT,
    FAIL,
    OK,
    WARN,
    Account,
    account,
    check_config,
    check_executable,
    check_images,
    check_log,
    check_private_dir,
    image_problem,
    knob_sources,
    path_problem,
)
from kgahp.config import settings_from_mapping

NOBODY = Account("nobody", 65534, frozenset({65534}), "/nonexistent")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path sits below a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="kgahp-check-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in sorted(path.rglob("*"), reverse=True):
            child.chmod(0o700)
            child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
        path.rmdir()


def _script(directory: Path, mode: int = 0o755) -> Path:
    script = directory / "kgahp"
    script.write_text("#!/usr/bin/python3\nprint('hi')\n")
    script.chmod(mode)
    return script


def test_private_parent_directory_is_named(public_dir: Path) -> None:
    private = public_dir / "home"
    private.mkdir(mode=0o700)
    script = _script(private)
    why = path_problem(str(script), NOBODY, "rx")
    assert why is not None and str(private) in why and "not searchable by nobody" in why
    private.chmod(0o755)
    assert path_problem(str(script), NOBODY, "rx") is None


def test_file_mode_and_symlink_target_are_checked(public_dir: Path) -> None:
    script = _script(public_dir, mode=0o700)
    why = path_problem(str(script), NOBODY, "rx")
    assert why is not None and "not readable and executable by nobody" in why
    hidden = public_dir / "hidden"
    hidden.mkdir(mode=0o700)
    target = _script(hidden)
    link = public_dir / "python3"
    link.symlink_to(target)
    why = path_problem(str(link), NOBODY, "x")
    assert why is not None and str(hidden) in why    # the link is fine, its target is not


def test_group_bits_count_for_members(public_dir: Path) -> None:
    script = _script(public_dir, mode=0o750)
    member = Account("member", 65534, frozenset({os.stat(script).st_gid}), "/nonexistent")
    assert path_problem(str(script), member, "rx") is None
    assert path_problem(str(script), NOBODY, "rx") is not None


def test_executable_check_fails_for_a_user_who_cannot_run_it(public_dir: Path) -> None:
    private = public_dir / "venv"
    private.mkdir(mode=0o700)
    script = _script(private)
    [result] = check_executable(NOBODY, script=str(script), interpreter="/usr/bin/python3")
    assert result.status == FAIL
    assert "kgahp script" in result.detail and str(private) in result.detail
    assert "/opt/kgahp" in result.fix


def test_executable_check_passes_for_the_running_user(public_dir: Path) -> None:
    script = _script(public_dir)
    results = check_executable(account(), script=str(script), interpreter=sys.executable)
    assert [r.status for r in results] == [OK]
    assert results[0].data["paths"]["kgahp script"] == str(script)


def test_configured_gahp_must_be_runnable_by_the_owner(public_dir: Path) -> None:
    script = _script(public_dir)
    hidden = public_dir / "pyenv"
    hidden.mkdir(mode=0o700)
    python = hidden / "python3"
    python.symlink_to("/usr/bin/python3")
    configured = public_dir / "kgahp-configured"
    configured.write_text(f"#!{python}\n")
    configured.chmod(0o755)
    [result] = check_executable(NOBODY, script=str(script), interpreter="/usr/bin/python3",
                                configured=str(configured))
    assert result.status == FAIL
    assert result.detail.startswith(f"KUBERNETES_GAHP = {configured}: directory {hidden}")
    hidden.chmod(0o755)
    [result] = check_executable(account(), script=str(script), interpreter=sys.executable,
                                configured=str(configured))
    assert result.status == WARN and "this check ran" in result.detail
    results = check_executable(account(), script=str(script), interpreter=sys.executable,
                               configured=str(script))
    assert [r.status for r in results] == [OK]


def test_knob_sources_without_htcondor_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "htcondor2", None)   # import fails: environment only
    values, log_dir = knob_sources({"_CONDOR_KGAHP_NAMESPACE": "jobs"})
    assert values["NAMESPACE"] == ("jobs", ENVIRONMENT)
    assert values["QPS"] == ("20", DEFAULT)
    assert log_dir == ""


def test_knob_sources_through_htcondor_param(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    # htcondor2.param merges config files and _CONDOR_ variables; kgahp tells them apart by
    # the environment. A stand-in module is enough: it is HTCondor's reader, not the cluster.
    param = {"KGAHP_NAMESPACE": "jobs", "KGAHP_QPS": "5", "LOG": str(tmp_path)}
    monkeypatch.setitem(sys.modules, "htcondor2", types.SimpleNamespace(param=param))
    values, log_dir = knob_sources({"_CONDOR_KGAHP_QPS": "5"})
    assert values["NAMESPACE"] == ("jobs", CONFIG)
    assert values["QPS"] == ("5", ENVIRONMENT)
    assert values["BURST"] == ("40", DEFAULT)
    assert log_dir == str(tmp_path)


def test_config_check_shows_every_knob_and_fails_on_a_bad_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "htcondor2", None)
    settings, [good] = check_config(account(), {"_CONDOR_KGAHP_NAMESPACE": "jobs"})
    assert settings is not None and settings.kube.namespace == "jobs"
    assert good.status == OK and "1 set" in good.detail
    assert good.data["knobs"]["KGAHP_NAMESPACE"] == {"value": "jobs", "source": ENVIRONMENT}
    assert good.data["knobs"]["KGAHP_WORKERS"] == {"value": "50", "source": DEFAULT}
    settings, [bad] = check_config(account(), {"_CONDOR_KGAHP_QPS": "fast"})
    assert settings is None and bad.status == FAIL and "KGAHP_QPS" in bad.detail


@pytest.mark.parametrize("image,ok", [
    ("busybox:1.36", True), ("registry.example.org:5000/osg/pilot:latest", True),
    ("python@sha256:" + "a" * 64, True), ("Busybox", False), ("bad image", False),
    ("repo:tag:extra", False), ("", False)])
def test_image_references(image: str, ok: bool) -> None:
    assert (image_problem(image) is None) == ok


def test_images_check() -> None:
    good = settings_from_mapping({"ALLOWED_IMAGES": "registry.example.org/*, busybox:*",
                                  "DEFAULT_IMAGE": "busybox:1.36"})
    assert [r.status for r in check_images(good)] == [OK]
    bad = settings_from_mapping({"ALLOWED_IMAGES": "Registry/UPPER/*",
                                 "DEFAULT_IMAGE": "python:3.12"})
    [result] = check_images(bad)
    assert result.status == FAIL
    assert "'Registry/UPPER/*' can match no image" in result.detail
    assert "'python:3.12' matches none of" in result.detail


def test_state_dir_must_be_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert check_private_dir("state", str(state), account(), "STATE_DIR").status == OK
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    result = check_private_dir("state", str(state), account(), "STATE_DIR")
    assert result.status == FAIL and "open to other users" in result.detail
    assert result.fix == f"chmod 700 {state}"
    state.chmod(0o700)
    assert check_private_dir("state", str(state), account(), "STATE_DIR").status == OK


def test_state_dir_of_another_user(public_dir: Path) -> None:
    result = check_private_dir("state", str(public_dir / "x" / ".kgahp"), NOBODY, "STATE_DIR")
    assert result.status == FAIL and "cannot be made" in result.detail
    mine = public_dir / "mine"
    mine.mkdir(mode=0o700)
    result = check_private_dir("state", str(mine), NOBODY, "STATE_DIR")
    assert result.status == FAIL and "chown nobody" in result.fix


def test_log_file_must_be_private(tmp_path: Path) -> None:
    log = tmp_path / "KGahpLog.alice"
    settings = settings_from_mapping({"LOG": str(log)}, user="alice")
    assert check_log(settings, account()).status == OK    # will be created
    log.write_text("")
    log.chmod(0o644)
    result = check_log(settings, account())
    assert result.status == FAIL and "readable by others" in result.detail
    log.chmod(0o600)
    assert check_log(settings, account()).status == OK


def _lines(results: list) -> dict[str, tuple[str, str]]:
    return {r.check: (r.status, r.detail) for r in results}


def test_host_checks_for_another_user(monkeypatch: pytest.MonkeyPatch,
                                      public_dir: Path) -> None:
    from kgahp.check import run_checks

    monkeypatch.setitem(sys.modules, "htcondor2", None)
    kubeconfig = public_dir / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    kubeconfig.chmod(0o600)
    queues = public_dir / "queues.yaml"
    queues.write_text("queues:\n  gpu:\n    priority: high\n")
    environ = {"_CONDOR_KGAHP_KUBECONFIG": str(kubeconfig),
               "_CONDOR_KGAHP_QUEUE_CONFIG": str(queues)}
    lines = _lines(run_checks(NOBODY, current=False, cluster=False, environ=environ))
    assert lines["kubeconfig"][0] == FAIL and "not readable by nobody" in lines["kubeconfig"][1]
    assert lines["templates"][0] == FAIL and "unknown keys priority" in lines["templates"][1]
    # the state directory defaults to the owner's home, not to the caller's
    assert lines["state"] == (FAIL, "/nonexistent/.kgahp does not exist and cannot be made: "
                                    "/ (drwxr-xr-x root) is not writable and executable by "
                                    "nobody")


def test_host_checks_pass_for_the_running_user(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from kgahp.check import run_checks

    monkeypatch.setitem(sys.modules, "htcondor2", None)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    kubeconfig.chmod(0o644)
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  gpu:\n    priorityClassName: batch-gpu\n")
    environ = {"_CONDOR_KGAHP_KUBECONFIG": str(kubeconfig),
               "_CONDOR_KGAHP_QUEUE_CONFIG": str(queues),
               "_CONDOR_KGAHP_STATE_DIR": str(tmp_path / "state")}
    lines = _lines(run_checks(account(), cluster=False, environ=environ))
    assert lines["kubeconfig"][0] == WARN and "readable by other users" in lines["kubeconfig"][1]
    assert lines["templates"][0] == OK and lines["templates"][1].endswith("queues: gpu")
    assert lines["state"][0] == OK
    kubeconfig.chmod(0o600)
    lines = _lines(run_checks(account(), cluster=False, environ=environ))
    assert lines["kubeconfig"][0] == OK
