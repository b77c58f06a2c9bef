"""Run a container as a local process: the sim's container runtime.

The process runs on the host, so paths the pod spec names inside the container (volume mountPaths)
are rewritten to the host directories that back them. Pure helpers (path rewriting, env expansion,
volume file sets) are separate from the one class that owns a child process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from kgahp_sim.quantity import QuantityError, parse_quantity

log = logging.getLogger(__name__)

Mount = tuple[str, str]   # (mountPath inside the container, host directory)


def rewrite_mount_paths(text: str, mounts: Sequence[Mount]) -> str:
    """Replace every mountPath occurrence (longest first, on a path boundary) by its host directory.

    A boundary means the mountPath is followed by '/', the end of the text, or a character that
    cannot continue a path component (so '/data' is rewritten in '/data/x' and 'a=/data:' but not
    in '/database').
    """
    ordered = sorted((m for m in mounts if m[0] not in ("", "/")), key=lambda m: -len(m[0]))
    out: list[str] = []
    i = 0
    while i < len(text):
        for mount_path, host_dir in ordered:
            stripped = mount_path.rstrip("/")
            if text.startswith(stripped, i) and _on_boundary(text, i, i + len(stripped)):
                out.append(host_dir.rstrip("/"))
                i += len(stripped)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _on_boundary(text: str, start: int, end: int) -> bool:
    before_ok = start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "._-/")
    after_ok = end == len(text) or not (text[end].isalnum() or text[end] in "._-")
    return before_ok and after_ok


def expand_env_references(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known names are replaced, $$ escapes, unknown refs stay."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if value.startswith("$(", i):
            close = value.find(")", i + 2)
            if close != -1 and value[i + 2:close] in env:
                out.append(env[value[i + 2:close]])
                i = close + 1
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class VolumeFile:
    path: str        # relative to the volume directory
    content: bytes
    mode: int        # file permission bits


def write_volume(directory: Path, files: Sequence[VolumeFile]) -> bool:
    """Make `directory` hold exactly `files` (atomic per file); True when anything changed."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {f.path: f for f in files}
    changed = False
    for existing in sorted(directory.rglob("*"), reverse=True):
        relative = existing.relative_to(directory).as_posix()
        if existing.is_file() and relative not in wanted:
            existing.unlink()
            changed = True
        elif existing.is_dir() and not any(p.startswith(relative + "/") for p in wanted):
            shutil.rmtree(existing, ignore_errors=True)
            changed = True
    for item in files:
        target = directory / item.path
        if target.is_file() and target.read_bytes() == item.content and \
                (target.stat().st_mode & 0o7777) == item.mode:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(item.content)
        os.chmod(tmp, item.mode)
        os.replace(tmp, target)
        changed = True
    return changed


# ----- env and volumes of a pod spec (pure given the objects they read) ------------------------

DEFAULT_HOST_IP = "127.0.0.1"


def _number(text: Any) -> float:
    try:
        return float(parse_quantity(text))
    except QuantityError:
        return 0.0


class ConfigMissing(Exception):
    """A referenced Secret/ConfigMap (or key) is missing; str() is the kubelet's message."""


def _decoded(obj: Mapping[str, Any], resource: str) -> dict[str, bytes]:
    if resource == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()} | \
            {k: v.encode() for k, v in (obj.get("stringData") or {}).items()}
    return {k: v.encode() for k, v in (obj.get("data") or {}).items()} | \
        {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}


def field_value(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.hostIP": status.get("hostIP") or DEFAULT_HOST_IP,
              "status.podIP": status.get("podIP"), "status.podIPs": status.get("podIP")}
    if path in simple:
        return str(simple[path] or "")
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2:-2], ""))
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get(source) or {}).items()))
    return ""


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    value = _number(((container.get("resources") or {}).get(kind) or {}).get(resource, 0))
    divisor = _number(ref.get("divisor") or "1") or 1.0
    return str(math.ceil(value / divisor))


Lookup = Mapping[tuple[str, str], Optional[Mapping[str, Any]]]   # (resource, name) -> object


def _key_ref(lookup: Lookup, resource: str, ref: Mapping[str, Any], namespace: str
             ) -> Optional[str]:
    kind = "Secret" if resource == "secrets" else "ConfigMap"
    obj = lookup.get((resource, ref.get("name", "")))
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigMissing(f'{kind.lower()} "{ref.get("name", "")}" not found')
    data = _decoded(obj, resource)
    if ref.get("key") not in data:
        if ref.get("optional"):
            return None
        raise ConfigMissing(f"couldn't find key {ref.get('key')} in {kind} "
                            f"{namespace}/{ref.get('name', '')}")
    return data[ref["key"]].decode(errors="replace")


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], lookup: Lookup,
                  base: Mapping[str, str]) -> dict[str, str]:
    """The container's environment, as the kubelet builds it; raises ConfigMissing."""
    namespace = pod["metadata"].get("namespace") or "default"
    env = dict(base)
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix", "")
        for resource, ref_key in (("secrets", "secretRef"), ("configmaps", "configMapRef")):
            ref = source.get(ref_key)
            if ref is None:
                continue
            obj = lookup.get((resource, ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                kind = "secret" if resource == "secrets" else "configmap"
                raise ConfigMissing(f'{kind} "{ref.get("name", "")}" not found')
            for key, raw in _decoded(obj, resource).items():
                env[prefix + key] = raw.decode(errors="replace")
    for item in container.get("env") or ():
        name = item.get("name", "")
        source = item.get("valueFrom")
        if source is None:
            env[name] = expand_env_references(str(item.get("value", "")), env)
            continue
        value: Optional[str]
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = _key_ref(lookup, "secrets", source["secretKeyRef"], namespace)
        elif "configMapKeyRef" in source:
            value = _key_ref(lookup, "configmaps", source["configMapKeyRef"], namespace)
        else:
            value = ""
        if value is not None:
            env[name] = value
    return env


def _items_files(data: Mapping[str, bytes], items: Optional[Sequence[Mapping[str, Any]]],
                 default_mode: int) -> list[VolumeFile]:
    if not items:
        return [VolumeFile(key, value, default_mode) for key, value in sorted(data.items())]
    return [VolumeFile(item["path"], data[item["key"]], int(item.get("mode", default_mode)))
            for item in items if item.get("key") in data]


def volume_files(pod: Mapping[str, Any], volume: Mapping[str, Any], lookup: Lookup
                 ) -> Optional[list[VolumeFile]]:
    """Files of a secret/configMap/projected/downwardAPI volume; None for a plain directory.

    Raises ConfigMissing (the FailedMount message) when a non-optional object is missing.
    """
    name = volume.get("name", "")
    for kind, resource, ref_field in (("secret", "secrets", "secretName"),
                                      ("configMap", "configmaps", "name")):
        source = volume.get(kind)
        if source is None:
            continue
        obj = lookup.get((resource, source.get(ref_field, "")))
        mode = int(source.get("defaultMode", 0o644))
        if obj is None:
            if source.get("optional"):
                return []
            label = "secret" if kind == "secret" else "configmap"
            raise ConfigMissing(f'MountVolume.SetUp failed for volume "{name}" : '
                                f'{label} "{source.get(ref_field, "")}" not found')
        return _items_files(_decoded(obj, resource), source.get("items"), mode)
    if "downwardAPI" in volume:
        mode = int(volume["downwardAPI"].get("defaultMode", 0o644))
        return [VolumeFile(i["path"], field_value(pod, i.get("fieldRef", {}).get("fieldPath", ""))
                           .encode(), int(i.get("mode", mode)))
                for i in volume["downwardAPI"].get("items") or ()]
    if "projected" in volume:
        mode = int(volume["projected"].get("defaultMode", 0o644))
        files: list[VolumeFile] = []
        for source in volume["projected"].get("sources") or ():
            if "serviceAccountToken" in source:
                files.append(VolumeFile(source["serviceAccountToken"].get("path", "token"),
                                        b"kgahp-sim-service-account-token", mode))
            for kind, resource in (("secret", "secrets"), ("configMap", "configmaps")):
                if kind in source:
                    obj = lookup.get((resource, source[kind].get("name", "")))
                    if obj is not None:
                        files += _items_files(_decoded(obj, resource), source[kind].get("items"),
                                              mode)
            if "downwardAPI" in source:
                files += [VolumeFile(i["path"], field_value(
                    pod, i.get("fieldRef", {}).get("fieldPath", "")).encode(), mode)
                          for i in source["downwardAPI"].get("items") or ()]
        return files
    return None


def referenced_objects(spec: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(resource, name) of every Secret/ConfigMap a pod spec reads (volumes and env)."""
    refs: set[tuple[str, str]] = set()
    for volume in spec.get("volumes") or ():
        if "secret" in volume:
            refs.add(("secrets", volume["secret"].get("secretName", "")))
        if "configMap" in volume:
            refs.add(("configmaps", volume["configMap"].get("name", "")))
        for source in (volume.get("projected") or {}).get("sources") or ():
            if "secret" in source:
                refs.add(("secrets", source["secret"].get("name", "")))
            if "configMap" in source:
                refs.add(("configmaps", source["configMap"].get("name", "")))
    for container in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
        for source in container.get("envFrom") or ():
            if "secretRef" in source:
                refs.add(("secrets", source["secretRef"].get("name", "")))
            if "configMapRef" in source:
                refs.add(("configmaps", source["configMapRef"].get("name", "")))
        for item in container.get("env") or ():
            value_from = item.get("valueFrom") or {}
            if "secretKeyRef" in value_from:
                refs.add(("secrets", value_from["secretKeyRef"].get("name", "")))
            if "configMapKeyRef" in value_from:
                refs.add(("configmaps", value_from["configMapKeyRef"].get("name", "")))
    return refs


def exit_code_of(returncode: int) -> int:
    """asyncio's returncode (-s for death by signal s) as a container exit code (128+s)."""
    return 128 - returncode if returncode < 0 else returncode


class StartError(Exception):
    """The process could not be started; str() is the runtime's message (no secrets in it)."""


@dataclass
class ProcessSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log_path: Path
    stdin: bool = False
    extra: dict[str, str] = field(default_factory=dict)   # reserved for callers' bookkeeping


def _resolve_program(argv0: str, env: Mapping[str, str], cwd: str) -> Optional[str]:
    if "/" in argv0:
        candidate = argv0 if os.path.isabs(argv0) else os.path.join(cwd, argv0)
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which(argv0, path=env.get("PATH", os.defpath))


class LocalProcess:
    """One running container process, in its own process group so every child gets the signal."""

    def __init__(self, proc: asyncio.subprocess.Process, log_handle: IO[bytes]) -> None:
        self._proc = proc
        self._log_handle = log_handle
        self._exit_code: Optional[int] = None
        self._wait_lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def start(cls, spec: ProcessSpec) -> LocalProcess:
        if not spec.argv:
            raise StartError("no command specified")
        program = _resolve_program(spec.argv[0], spec.env, spec.cwd)
        if program is None:
            raise StartError(
                "failed to create containerd task: failed to create shim task: OCI runtime "
                "create failed: runc create failed: unable to start container process: "
                f'exec: "{spec.argv[0]}": executable file not found in $PATH: unknown')
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_handle = open(spec.log_path, "ab")  # closed by wait()
        try:
            proc = await asyncio.create_subprocess_exec(
                program, *spec.argv[1:],
                # stdin: true keeps an open pipe nobody writes to (no attached client)
                stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
                stdout=log_handle, stderr=asyncio.subprocess.STDOUT,
                cwd=spec.cwd, env=spec.env, start_new_session=True)
        except OSError as error:
            log_handle.close()
            raise StartError(f"failed to start container process: {error.strerror}") from None
        return cls(proc, log_handle)

    async def wait(self) -> int:
        """Wait for the end of the process; its exit code (128+s for a signal)."""
        async with self._wait_lock:
            if self._exit_code is None:
                returncode = await self._proc.wait()
                self._exit_code = exit_code_of(returncode)
                self._signal_group(signal.SIGKILL)   # leftover children of the container die too
                self._log_handle.close()
        return self._exit_code

    @property
    def exited(self) -> bool:
        return self._proc.returncode is not None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def terminate(self) -> None:
        if not self.exited:
            self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        if not self.exited:
            self._signal_group(signal.SIGKILL)

    async def stop(self, grace_seconds: float) -> int:
        """SIGTERM, then SIGKILL once the grace period has passed (at once for 0); the exit code."""
        if grace_seconds <= 0:
            self.kill()
            return await self.wait()
        self.terminate()
        try:
            return await asyncio.wait_for(
                asyncio.shield(self.wait()), timeout=max(grace_seconds, 0))
        except asyncio.TimeoutError:
            self.kill()
            return await self.wait()


class ScriptedProcess:
    """A container that only pretends to run: exits with `exit_code` after `seconds`.

    `seconds=None` runs until signalled. SIGTERM ends it with 143 unless `ignores_sigterm`, SIGKILL
    with 137. Same interface as LocalProcess so the kubelet treats both alike.
    """

    def __init__(
        self, exit_code: int, seconds: Optional[float], ignores_sigterm: bool = False
    ) -> None:
        self._planned = exit_code
        self._ignores_sigterm = ignores_sigterm
        self._done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._timer = None if seconds is None else \
            asyncio.get_running_loop().call_later(max(seconds, 0), self._finish, exit_code)

    def _finish(self, code: int) -> None:
        if not self._done.done():
            self._done.set_result(code)
        if self._timer is not None:
            self._timer.cancel()

    @property
    def exited(self) -> bool:
        return self._done.done()

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    def terminate(self) -> None:
        if not self._ignores_sigterm:
            self._finish(128 + signal.SIGTERM)

    def kill(self) -> None:
        self._finish(128 + signal.SIGKILL)

    async def stop(self, grace_seconds: float) -> int:
        if grace_seconds <= 0:
            self.kill()
            return await self.wait()
        self.terminate()
        try:
            return await asyncio.wait_for(self.wait(), timeout=grace_seconds)
        except asyncio.TimeoutError:
            self.kill()
            return await self.wait()
