"""The input sandbox: which submit-host files go into the pod, and the Secret that ships them.

HTCondor's placement rules apply: a TransferInput file lands at the top of the sandbox under its
base name, a directory `d` arrives as `d/...`, and `d/` (trailing slash) ships only its contents.
Every Secret item path starts with `s/` so the stage-in copy can take `s/.` without also copying
the `..data` bookkeeping entries Kubernetes puts at the root of a Secret volume. The staged Cmd and
stdin live under the sandbox's control directory `.kgahp/`, which job files may not use.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
from dataclasses import dataclass

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox.credentials import opaque_secret
from kgahp.sandbox.safepath import CONTROL_DIR, is_null_device, submit_path

log = logging.getLogger(__name__)

ITEM_ROOT = "s"                              # every Secret item path starts here
STAGED_STDIN = f"{CONTROL_DIR}/stdin"        # relative to the sandbox
STAGED_EXEC_DIR = f"{CONTROL_DIR}/exec"      # the staged Cmd keeps its base name in here
EXECUTABLE_MODE = 0o755
PLAIN_MODE = 0o644


@dataclass(frozen=True)
class InputBundle:
    """Everything the input Secret holds. `data` may be confidential: it never appears in a repr."""

    data: dict[str, str]                       # Secret key -> base64 content
    items: tuple[tuple[str, str, int], ...]    # (key, path in the Secret volume, file mode)
    total_bytes: int                           # raw size of all files

    def __repr__(self) -> str:
        return f"InputBundle(files={len(self.items)}, total_bytes={self.total_bytes})"


@dataclass(frozen=True)
class PlannedFile:
    source: str      # absolute path on the submit host
    dest: str        # path relative to the sandbox


def staged_cmd_path(req: JobRequest) -> str:
    """Where a staged Cmd sits relative to the sandbox."""
    return f"{STAGED_EXEC_DIR}/{os.path.basename(req.cmd.rstrip('/')) or 'condor_exec.exe'}"


def _entry_base(entry: str) -> str:
    base = os.path.basename(entry.rstrip("/"))
    if base in ("", ".", ".."):
        raise TransferError(f"TransferInput entry {entry!r} does not name a file or directory")
    if base == CONTROL_DIR:
        raise TransferError(f"TransferInput entry {entry!r} uses the name {CONTROL_DIR}, "
                            "which kgahp reserves")
    return base


def _walk_directory(source: str, dest_prefix: str) -> list[PlannedFile]:
    """Every regular file below `source` (files behind symlinks are read; linked dirs are not)."""
    out: list[PlannedFile] = []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                log.warning("input directory %s: not following the directory link %s",
                            source, name)
        rel_dir = os.path.relpath(dirpath, source)
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            dest = f"{dest_prefix}/{rel}" if dest_prefix else rel
            out.append(PlannedFile(os.path.join(dirpath, name), dest))
    return out


def plan_inputs(req: JobRequest) -> list[PlannedFile]:
    """Submit-host files and their place in the sandbox. Reads directory listings only."""
    planned: list[PlannedFile] = []
    if req.stage_cmd:
        planned.append(PlannedFile(submit_path(req.iwd, req.cmd), staged_cmd_path(req)))
    if not is_null_device(req.stdin):
        assert req.stdin is not None
        planned.append(PlannedFile(submit_path(req.iwd, req.stdin), STAGED_STDIN))
    for entry in req.transfer_input:
        if "://" in entry:
            raise TransferError(f"TransferInput entry {entry!r} is a URL; kgahp ships only "
                                "files from the submit host")
        base = _entry_base(entry)
        source = submit_path(req.iwd, entry)
        if os.path.isdir(source):
            prefix = "" if entry.endswith("/") else base
            planned.extend(_walk_directory(source, prefix))
        else:
            planned.append(PlannedFile(source, base))
    seen: dict[str, str] = {}
    for f in planned:
        if f.dest in seen:
            raise TransferError(f"input files {seen[f.dest]!r} and {f.source!r} would both "
                                f"arrive as {f.dest!r} in the sandbox")
        seen[f.dest] = f.source
    return planned


def _size_and_mode(f: PlannedFile) -> tuple[int, int]:
    try:
        st = os.stat(f.source)
    except OSError as exc:
        raise TransferError(f"input file {f.source} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TransferError(f"input file {f.source} is not a regular file")
    mode = EXECUTABLE_MODE if st.st_mode & 0o111 else PLAIN_MODE
    return st.st_size, mode


def gather_inputs(req: JobRequest, transfer: TransferSettings) -> InputBundle | None:
    """Read the job's input files into a Secret-ready bundle (api mode); None if nothing to ship.

    TransferError for a missing or unreadable input, a name kgahp cannot place, or an input
    sandbox larger than `max_input_bytes` (0 = no limit).
    """
    if transfer.mode != "api":
        return None
    # declared credential files travel in the credential Secret, not here
    planned = [f for f in plan_inputs(req) if f.dest not in transfer.credential_files]
    if not planned:
        return None
    sized = [(f, *_size_and_mode(f)) for f in planned]
    total = sum(size for _, size, _ in sized)
    limit = transfer.max_input_bytes
    if limit and total > limit:
        raise TransferError(
            f"input sandbox of {total} bytes exceeds the limit of {limit} bytes "
            f"(KGAHP_MAX_INPUT_BYTES); ship large inputs another way or ask the admin")
    data: dict[str, str] = {}
    items: list[tuple[str, str, int]] = []
    for index, (f, _, mode) in enumerate(sized):
        key = f"f{index}"
        try:
            with open(f.source, "rb") as fh:
                content = fh.read()
        except OSError as exc:
            raise TransferError(f"input file {f.source} cannot be read: {exc.strerror}") from None
        data[key] = base64.b64encode(content).decode("ascii")
        items.append((key, f"{ITEM_ROOT}/{f.dest}", mode))
    return InputBundle(data=data, items=tuple(items), total_bytes=total)


def input_secret_manifest(name: str, namespace: str, bundle: InputBundle,
                          labels: dict[str, str]) -> dict:
    """The per-job input Secret (immutable: inputs never change after submit)."""
    return opaque_secret(name, namespace, labels, bundle.data, immutable=True)
