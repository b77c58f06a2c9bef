"""Run a container as a local process: the sim's container runtime.

The process runs on the host, so paths the pod spec names inside the container (volume mountPaths)
are rewritten to the host directories that back them. Pure helpers (path rewriting, env expansion,
volume file sets) are separate from the one class that owns a child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

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
                stdin=None if spec.stdin else asyncio.subprocess.DEVNULL,
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
        """SIGTERM, then SIGKILL once the grace period has passed; the exit code."""
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
        self.terminate()
        try:
            return await asyncio.wait_for(self.wait(), timeout=max(grace_seconds, 0))
        except asyncio.TimeoutError:
            self.kill()
            return await self.wait()
