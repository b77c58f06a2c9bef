"""Pure tests: how decorate_pod changes a pod, the Secrets, and credential hygiene."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox import (
    CREDENTIALS_SECRET_PLACEHOLDER,
    InputBundle,
    decorate_pod,
    gather_inputs,
    input_secret_manifest,
    proxy_secret_data,
    proxy_secret_manifest,
    read_credential,
)
from kgahp.sandbox.decorate import parse_shared_volume
from kgahp.sandbox.wrapper import API_SCRIPT, SHARED_SCRIPT, STAGE_IN_SCRIPT

SECRET_TEXT = "-----BEGIN PRIVATE KEY-----sekrit"


def req(**kw: object) -> JobRequest:
    base: dict = {"job_directory": "home_bl_x", "cmd": "/home/u/jobs/run.sh",
                  "iwd": "/home/u/jobs", "arguments": ("a b", "$(x)")}
    base.update(kw)
    return JobRequest(**base)


def pod(r: JobRequest) -> dict:
    return {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "job", "image": "img", "command": [r.cmd], "args": list(r.arguments),
         "env": [{"name": "FOO", "value": "bar"}],
         "securityContext": {"runAsNonRoot": True}}]}}


BUNDLE = InputBundle(data={"f0": "AAAA", "f1": "BBBB"},
                     items=(("f0", "s/.kgahp/exec/run.sh", 0o755), ("f1", "s/data.txt", 0o644)),
                     total_bytes=6)


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_api_mode_adds_sandbox_stage_in_and_wrapper() -> None:
    r = req(stdout="o", stderr="e", transfer_output=("res.txt", "dir/x"))
    p = pod(r)
    decorate_pod(p, r, TransferSettings(), inputs=BUNDLE, input_secret="kg-1-in")
    spec = p["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["kgahp-sandbox"] == {"name": "kgahp-sandbox", "emptyDir": {}}
    assert volumes["kgahp-input"]["secret"]["secretName"] == "kg-1-in"
    assert volumes["kgahp-input"]["secret"]["items"] == [
        {"key": "f0", "path": "s/.kgahp/exec/run.sh", "mode": 0o755},
        {"key": "f1", "path": "s/data.txt", "mode": 0o644}]
    (init,) = spec["initContainers"]
    assert init["name"] == "kgahp-stage-in" and init["image"] == "busybox:1.36"
    assert init["command"] == ["sh", "-c", STAGE_IN_SCRIPT, "kgahp-stage-in"]
    assert init["securityContext"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert {m["mountPath"]: m.get("readOnly", False) for m in init["volumeMounts"]} == {
        "/kgahp/input": True, "/kgahp/sandbox": False}
    job = spec["containers"][0]
    assert job["command"] == ["sh", "-c", API_SCRIPT]
    assert job["args"] == ["kgahp-wrapper", "/kgahp/sandbox/.kgahp/exec/run.sh", "a b", "$(x)"]
    assert job["workingDir"] == "/kgahp/sandbox"
    env = env_of(job)
    assert env["FOO"] == "bar"
    assert env["KGAHP_OUTPUTS"] == "res.txt\ndir/x" and env["KGAHP_OUTPUTS_DEFAULT"] == ""
    assert env["KGAHP_STDIN"] == "/dev/null"
    assert env["KGAHP_STDOUT"] == ".kgahp/stdout" and env["KGAHP_STDERR"] == ".kgahp/stderr"
    assert env["KGAHP_MAX_OUTPUT"] == "8388608"
    assert "X509_USER_PROXY" not in env


def test_job_data_never_enters_the_scripts() -> None:
    r = req(arguments=("'; rm -rf / #",), transfer_output=("x",))
    p = pod(r)
    decorate_pod(p, r, TransferSettings(), inputs=BUNDLE, input_secret="s")
    job = p["spec"]["containers"][0]
    assert job["command"][2] == API_SCRIPT
    assert job["args"][-1] == "'; rm -rf / #"


def test_api_mode_default_outputs_and_null_streams() -> None:
    r = req(stdin="/dev/null", stdout=None, stderr="/dev/null")
    p = pod(r)
    decorate_pod(p, r, TransferSettings(), inputs=None, input_secret=None)
    job = p["spec"]["containers"][0]
    env = env_of(job)
    assert env["KGAHP_OUTPUTS_DEFAULT"] == "1"
    assert env["KGAHP_STDOUT"] == env["KGAHP_STDERR"] == "/dev/null"
    assert "initContainers" not in p["spec"]
    assert job["args"][1] == "/home/u/jobs/run.sh"      # nothing staged: the path as given


def test_bundle_without_secret_name_is_refused() -> None:
    r = req()
    with pytest.raises(TransferError):
        decorate_pod(pod(r), r, TransferSettings(), inputs=BUNDLE, input_secret=None)


def test_proxy_is_a_directory_mount_with_private_mode_in_every_mode() -> None:
    for mode in ("api", "shared", "none"):
        r = req()
        p = pod(r)
        decorate_pod(p, r, TransferSettings(mode=mode, shared_volume="pvc:home:/home"),
                     proxy_secret="kg-1-proxy")
        volume = next(v for v in p["spec"]["volumes"] if v["name"] == "kgahp-creds")
        assert volume["secret"]["secretName"] == "kg-1-proxy"
        assert volume["secret"]["defaultMode"] == 0o600
        assert volume["secret"]["items"] == [{"key": "x509up", "path": "x509up", "mode": 0o600}]
        job = p["spec"]["containers"][0]
        mount = next(m for m in job["volumeMounts"] if m["name"] == "kgahp-creds")
        assert "subPath" not in mount and mount["readOnly"] is True
        assert env_of(job)["X509_USER_PROXY"] == f"{mount['mountPath']}/x509up"


def test_none_mode_leaves_the_command_alone() -> None:
    r = req()
    p = pod(r)
    before = copy.deepcopy(p)
    decorate_pod(p, r, TransferSettings(mode="none"))
    assert p == before


def test_template_placeholder_points_at_the_job_credentials() -> None:
    r = req()
    for secret, expected in (("kg-1-proxy", {"secretName": "kg-1-proxy"}),
                             (None, {"secretName": CREDENTIALS_SECRET_PLACEHOLDER,
                                     "optional": True})):
        p = pod(r)
        p["spec"]["volumes"] = [{"name": "tokens",
                                 "secret": {"secretName": CREDENTIALS_SECRET_PLACEHOLDER}}]
        decorate_pod(p, r, TransferSettings(mode="none"), proxy_secret=secret)
        assert p["spec"]["volumes"][0]["secret"] == expected


@pytest.mark.parametrize(("knob", "iwd", "volume", "sub_path"), [
    ("pvc:home:/home", "/home/u/jobs", {"persistentVolumeClaim": {"claimName": "home"}},
     "u/jobs"),
    ("pvc:scratch", "/home/u/jobs", {"persistentVolumeClaim": {"claimName": "scratch"}},
     "home/u/jobs"),
    ("hostPath:/home/u/jobs", "/home/u/jobs",
     {"hostPath": {"path": "/home/u/jobs", "type": "Directory"}}, None),
])
def test_shared_mode_mounts_only_iwd(knob: str, iwd: str, volume: dict,
                                     sub_path: str | None) -> None:
    r = req(iwd=iwd, stdout="o.txt", stderr="/home/u/jobs/sub/e.txt", stdin="/dev/null")
    p = pod(r)
    decorate_pod(p, r, TransferSettings(mode="shared", shared_volume=knob))
    (vol,) = p["spec"]["volumes"]
    assert {k: v for k, v in vol.items() if k != "name"} == volume
    job = p["spec"]["containers"][0]
    (mount,) = job["volumeMounts"]
    assert mount["mountPath"] == iwd and mount.get("subPath") == sub_path
    assert job["workingDir"] == iwd and job["command"] == ["sh", "-c", SHARED_SCRIPT]
    env = env_of(job)
    assert env["KGAHP_STDOUT"] == f"{iwd}/o.txt"
    assert env["KGAHP_STDERR"] == "/home/u/jobs/sub/e.txt"
    assert env["KGAHP_STDIN"] == "/dev/null"


@pytest.mark.parametrize(("knob", "overrides"), [
    ("hostPath:/data", {}),                                  # Iwd not on the volume
    ("pvc:home:/home", {"stdout": "/var/log/o.txt"}),        # Out outside Iwd
    ("pvc:home:/home", {"stderr": "../e.txt"}),              # Err climbs out of Iwd
    ("nfs:server", {}),                                      # unknown volume kind
    ("hostPath:relative", {}),
])
def test_shared_mode_refusals(knob: str, overrides: dict) -> None:
    r = req(**overrides)
    with pytest.raises(TransferError):
        decorate_pod(pod(r), r, TransferSettings(mode="shared", shared_volume=knob))


def test_parse_shared_volume_reports_the_knob() -> None:
    with pytest.raises(TransferError, match="KGAHP_SHARED_VOLUME"):
        parse_shared_volume("bogus")


@pytest.mark.parametrize("entry", ["/abs/x", "../x", "a/../../x", ".kgahp/stdout", ""])
def test_bad_output_entries_are_refused(entry: str) -> None:
    r = req(transfer_output=(entry,))
    with pytest.raises(TransferError):
        decorate_pod(pod(r), r, TransferSettings())


def test_input_secret_and_bundle_repr_hide_contents(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text(SECRET_TEXT)
    (tmp_path / "run.sh").chmod(0o700)
    (tmp_path / "cfg").write_text("x")
    r = req(cmd=str(tmp_path / "run.sh"), iwd=str(tmp_path), transfer_input=("cfg",),
            stdin="cfg")
    bundle = gather_inputs(r, TransferSettings())
    assert bundle is not None
    assert SECRET_TEXT not in repr(bundle) and "sekrit" not in repr(bundle)
    assert bundle.items == (("f0", "s/.kgahp/exec/run.sh", 0o755), ("f1", "s/.kgahp/stdin", 0o644),
                            ("f2", "s/cfg", 0o644))
    assert bundle.total_bytes == len(SECRET_TEXT) + 2
    manifest = input_secret_manifest("kg-in", "ns", bundle, {"a": "b"})
    assert manifest["kind"] == "Secret" and manifest["immutable"] is True
    assert manifest["metadata"] == {"name": "kg-in", "namespace": "ns", "labels": {"a": "b"}}
    assert base64.b64decode(manifest["data"]["f0"]).decode() == SECRET_TEXT


@pytest.mark.parametrize("entries", [
    ("a/x.txt", "b/x.txt"),            # both land as x.txt
    ("..",), (".kgahp",), ("https://example.org/x",),
    ("missing.txt",),
])
def test_input_refusals(tmp_path: Path, entries: tuple[str, ...]) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.txt").write_text(d)
    r = req(stage_cmd=False, iwd=str(tmp_path), transfer_input=entries)
    with pytest.raises(TransferError):
        gather_inputs(r, TransferSettings())


def test_no_inputs_outside_api_mode(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    r = req(iwd=str(tmp_path), cmd=str(tmp_path / "f"), transfer_input=("f",))
    assert gather_inputs(r, TransferSettings(mode="shared", shared_volume="pvc:x")) is None
    assert gather_inputs(r, TransferSettings(mode="none")) is None


def test_proxy_secret_round_trips_and_errors_never_show_contents(tmp_path: Path) -> None:
    proxy = SECRET_TEXT.encode() + b"\n\x00\xff"
    manifest = proxy_secret_manifest("kg-p", "ns", proxy, {"k": "v"})
    assert manifest["data"] == proxy_secret_data(proxy)
    assert base64.b64decode(manifest["data"]["x509up"]) == proxy
    assert "immutable" not in manifest           # refreshed in place by a patch
    path = tmp_path / "x509up_u1000"
    path.write_bytes(proxy)
    assert read_credential(str(path)) == proxy
    missing = tmp_path / "gone"
    with pytest.raises(TransferError) as err:
        read_credential(str(missing))
    assert str(missing) in str(err.value) and "sekrit" not in str(err.value)


def test_stage_in_is_restricted_even_when_the_template_grants_the_job_more() -> None:
    r = req()
    p = pod(r)
    p["spec"]["containers"][0]["securityContext"] = {
        "privileged": True, "runAsUser": 1000, "capabilities": {"add": ["SYS_ADMIN"]}}
    decorate_pod(p, r, TransferSettings(), inputs=BUNDLE, input_secret="kg-1-in")
    (init,) = p["spec"]["initContainers"]
    assert init["securityContext"] == {
        "runAsUser": 1000, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
