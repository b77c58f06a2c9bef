"""Add file transfer and credentials to a pod built by kgahp.podspec. Pure: dict in, dict changed.

api:    emptyDir sandbox + input Secret + `kgahp-stage-in` init container + framing wrapper.
shared: the admin's volume mounted at Iwd (subPath = Iwd below the volume root); streams written
        in place. Only Iwd is visible, so Cmd is found there or in the image.
none:   the command is left alone.
In every mode a proxy Secret, when given, is mounted at /kgahp/creds with X509_USER_PROXY set.
"""

from __future__ import annotations

import copy
import os

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox import credentials, wrapper
from kgahp.sandbox.inputs import STAGED_STDIN, InputBundle, staged_cmd_path
from kgahp.sandbox.outputs import output_entries
from kgahp.sandbox.safepath import CONTROL_DIR, is_null_device, is_within, submit_path

MAIN_CONTAINER = "job"
SANDBOX_VOLUME = "kgahp-sandbox"
INPUT_VOLUME = "kgahp-input"
INPUT_MOUNT = "/kgahp/input"
SHARED_VOLUME = "kgahp-shared"
STDOUT_FILE = f"{CONTROL_DIR}/stdout"
STDERR_FILE = f"{CONTROL_DIR}/stderr"


def parse_shared_volume(knob: str) -> tuple[dict, str]:
    """`pvc:<claim>[:<root>]` or `hostPath:<dir>` -> (volume source, submit-host path of its root).

    A claim's root is what the submit host sees at <root> (default /); a hostPath directory is
    the same path on the nodes as on the submit host.
    """
    kind, _, rest = knob.partition(":")
    if kind.lower() == "pvc" and rest:
        claim, _, root = rest.partition(":")
        return {"persistentVolumeClaim": {"claimName": claim}}, os.path.normpath(root or "/")
    if kind.lower() == "hostpath" and rest.startswith("/"):
        return {"hostPath": {"path": rest, "type": "Directory"}}, os.path.normpath(rest)
    raise TransferError(f"KGAHP_SHARED_VOLUME = {knob!r} is neither pvc:<claim> nor "
                        "hostPath:<absolute dir>")


# What a helper container needs (reading a Secret volume, writing the sandbox): none of the
# privileges a template may grant the job, so it always gets the restricted profile.
_HELPER_RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                      "seccompProfile": {"type": "RuntimeDefault"}}
_IDENTITY_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot")


def helper_security_context(job: dict) -> dict:
    """The restricted profile, running as the job's own container-level user when it has one
    (files it stages then belong to the job); otherwise the pod-level user applies."""
    context = {k: copy.deepcopy(v) for k, v in (job.get("securityContext") or {}).items()
               if k in _IDENTITY_KEYS}
    context.update(copy.deepcopy(_HELPER_RESTRICTED))
    return context


def _main_container(pod: dict) -> dict:
    for container in pod.get("spec", {}).get("containers", []):
        if container.get("name") == MAIN_CONTAINER:
            return container
    raise TransferError(f"the pod has no container named {MAIN_CONTAINER!r}")


def _set_env(container: dict, values: dict[str, str]) -> None:
    env = [e for e in container.get("env", []) if e.get("name") not in values]
    env += [{"name": k, "value": v} for k, v in values.items()]
    container["env"] = env


def _payload(container: dict, req: JobRequest) -> list[str]:
    command = list(container.get("command") or [req.cmd])
    args = list(container["args"]) if "args" in container else list(req.arguments)
    return command + args


def _stream_env(path: str | None, staged: str) -> str:
    return "/dev/null" if is_null_device(path) else staged


def _same_stream(req: JobRequest) -> bool:
    if is_null_device(req.stdout) or is_null_device(req.stderr):
        return False
    return submit_path(req.iwd, str(req.stdout)) == submit_path(req.iwd, str(req.stderr))


def _decorate_api(pod: dict, job: dict, req: JobRequest, transfer: TransferSettings,
                  inputs: InputBundle | None, input_secret: str | None) -> None:
    spec = pod["spec"]
    sandbox = transfer.sandbox_path
    spec.setdefault("volumes", []).append({"name": SANDBOX_VOLUME, "emptyDir": {}})
    mounts = job.setdefault("volumeMounts", [])
    mounts.append({"name": SANDBOX_VOLUME, "mountPath": sandbox})
    payload = _payload(job, req)
    if inputs is not None and inputs.items:
        if not input_secret:
            raise TransferError("an input bundle needs the name of its Secret")
        spec["volumes"].append({"name": INPUT_VOLUME, "secret": {
            "secretName": input_secret,
            "items": [{"key": k, "path": p, "mode": m} for k, p, m in inputs.items]}})
        input_mount = {"name": INPUT_VOLUME, "mountPath": INPUT_MOUNT, "readOnly": True}
        mounts.append(dict(input_mount))
        stage_in: dict = {
            "name": wrapper.STAGE_IN_NAME,
            "image": transfer.helper_image,
            "command": ["sh", "-c", wrapper.STAGE_IN_SCRIPT, wrapper.STAGE_IN_NAME],
            "env": [{"name": "KGAHP_INPUT", "value": INPUT_MOUNT},
                    {"name": "KGAHP_SANDBOX", "value": sandbox}],
            "volumeMounts": [input_mount, {"name": SANDBOX_VOLUME, "mountPath": sandbox}],
            # the copy is tiny; explicit resources keep quota/LimitRange admission happy. They
            # are the admin's helper budget (KGAHP_HELPER_*), never taken from the job's request
            "resources": transfer.helper_resources,
        }
        stage_in["securityContext"] = helper_security_context(job)
        spec.setdefault("initContainers", []).append(stage_in)
        if req.stage_cmd and payload:
            payload[0] = f"{sandbox.rstrip('/')}/{staged_cmd_path(req)}"
    entries = output_entries(req)
    stdout_env = _stream_env(req.stdout, STDOUT_FILE)
    stderr_env = _stream_env(req.stderr, STDERR_FILE)
    if stdout_env != "/dev/null" and _same_stream(req):
        stderr_env = stdout_env          # Out == Err: one merged file, as HTCondor writes it
    job["command"], job["args"] = wrapper.wrapped_command(wrapper.API_SCRIPT, payload)
    job["workingDir"] = sandbox
    _set_env(job, {
        "KGAHP_SANDBOX": sandbox,
        "KGAHP_INPUT": INPUT_MOUNT,
        "KGAHP_STDIN": _stream_env(req.stdin, STAGED_STDIN),
        "KGAHP_STDOUT": stdout_env,
        "KGAHP_STDERR": stderr_env,
        "KGAHP_OUTPUTS": "\n".join(entries or ()),
        "KGAHP_OUTPUTS_DEFAULT": "1" if entries is None else "",
        "KGAHP_MAX_OUTPUT": str(transfer.max_output_bytes),
    })


def _shared_stream(req: JobRequest, path: str | None, what: str) -> str:
    if is_null_device(path):
        return "/dev/null"
    assert path is not None
    full = submit_path(req.iwd, path)
    if not is_within(os.path.normpath(req.iwd), full):
        raise TransferError(f"{what} {path!r} is outside Iwd {req.iwd}, the only directory "
                            "the pod sees in shared transfer mode")
    return full


def _decorate_shared(pod: dict, job: dict, req: JobRequest, transfer: TransferSettings) -> None:
    source, root = parse_shared_volume(transfer.shared_volume)
    iwd = os.path.normpath(req.iwd)
    if not os.path.isabs(iwd) or not is_within(root, iwd):
        raise TransferError(f"Iwd {req.iwd} is not on the shared volume ({root}); "
                            "see KGAHP_SHARED_VOLUME")
    pod["spec"].setdefault("volumes", []).append({"name": SHARED_VOLUME, **source})
    mount: dict = {"name": SHARED_VOLUME, "mountPath": iwd}
    if iwd != root:
        mount["subPath"] = os.path.relpath(iwd, root)
    job.setdefault("volumeMounts", []).append(mount)
    env = {"KGAHP_SANDBOX": iwd,
           "KGAHP_STDIN": _shared_stream(req, req.stdin, "In"),
           "KGAHP_STDOUT": _shared_stream(req, req.stdout, "Out"),
           "KGAHP_STDERR": _shared_stream(req, req.stderr, "Err")}
    job["command"], job["args"] = wrapper.wrapped_command(wrapper.SHARED_SCRIPT,
                                                          _payload(job, req))
    job["workingDir"] = iwd
    _set_env(job, env)


def decorate_pod(pod: dict, req: JobRequest, transfer: TransferSettings, *,
                 inputs: InputBundle | None = None, input_secret: str | None = None,
                 proxy_secret: str | None = None,
                 credential_keys: tuple[str, ...] = (credentials.PROXY_KEY,)) -> None:
    """Add volumes, the stage-in init container, the wrapper and credentials to `pod` in place.

    `inputs`/`input_secret`: the bundle from gather_inputs and the name its Secret is created
    under (api mode). `proxy_secret`: name of the job's credential Secret (proxy and declared
    token files), whose keys are `credential_keys`.
    TransferError when the request cannot be honoured in this mode (e.g. Iwd off the shared volume).
    """
    job = _main_container(pod)
    spec = pod["spec"]
    if transfer.mode == "api":
        _decorate_api(pod, job, req, transfer, inputs, input_secret)
    elif transfer.mode == "shared":
        _decorate_shared(pod, job, req, transfer)
    if proxy_secret:
        spec.setdefault("volumes", []).append(
            credentials.proxy_volume(proxy_secret, credential_keys))
        job.setdefault("volumeMounts", []).append(credentials.proxy_mount())
        env = {credentials.CREDENTIALS_ENV: credentials.CREDS_MOUNT}
        if credentials.PROXY_KEY in credential_keys:
            env[credentials.PROXY_ENV] = credentials.proxy_path_in_pod()
        _set_env(job, env)
    credentials.resolve_placeholders(spec.get("volumes", []), proxy_secret)
