"""Path rules that keep every file kgahp writes inside the job's Iwd.

The submit host is the side that must be protected: a job (or its archive) names files, kgahp
decides where they go, and nothing may land outside Iwd through `..`, absolute names or symlinks.
"""

from __future__ import annotations

import os

from kgahp.errors import TransferError

# Name of the control directory inside the pod sandbox (staged Cmd, stdin, captured streams).
CONTROL_DIR = ".kgahp"


def clean_relative(path: str, what: str) -> str:
    """`path` normalised to `a/b/c`; TransferError if it is absolute, empty or climbs with `..`."""
    if not path or "\x00" in path or "\n" in path:
        raise TransferError(f"{what} {path!r} is not a usable file name")
    if path.startswith("/"):
        raise TransferError(f"{what} {path!r} is an absolute path; only names inside Iwd "
                            "are allowed")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise TransferError(f"{what} {path!r} does not name a file")
    if ".." in parts:
        raise TransferError(f"{what} {path!r} leaves the job's directory")
    return "/".join(parts)


def is_within(root: str, path: str) -> bool:
    """True when `path` is `root` or below it (both already absolute and normalised)."""
    return os.path.commonpath([root, path]) == root


def relative_to_iwd(iwd: str, path: str, what: str) -> str:
    """A destination as written by the job (relative, or absolute inside Iwd) -> clean relative."""
    if os.path.isabs(path):
        full = os.path.normpath(path)
        root = os.path.normpath(iwd)
        if not is_within(root, full) or full == root:
            raise TransferError(f"{what} {path!r} is outside the job's directory {iwd}")
        path = os.path.relpath(full, root)
    return clean_relative(path, what)


def safe_destination(iwd: str, rel: str, what: str) -> str:
    """Absolute path for `rel` below Iwd after resolving symlinks already on disk.

    Reads the filesystem (realpath) but writes nothing. Rejects a parent directory or an existing
    final symlink that resolves outside Iwd.
    """
    rel = clean_relative(rel, what)
    real_iwd = os.path.realpath(iwd)
    dest = os.path.join(real_iwd, rel)
    parent = os.path.realpath(os.path.dirname(dest))
    if not is_within(real_iwd, parent):
        raise TransferError(f"{what} {rel!r} would be written outside the job's directory")
    final = os.path.join(parent, os.path.basename(dest))
    if os.path.islink(final) and not is_within(real_iwd, os.path.realpath(final)):
        raise TransferError(f"{what} {rel!r} is a symbolic link that leaves the job's directory")
    return final


def submit_path(iwd: str, path: str) -> str:
    """A submit-host path from the ad (relative to Iwd unless absolute), normalised."""
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(iwd, path))


def is_null_device(path: str | None) -> bool:
    return path is None or path == "" or os.path.normpath(path) == "/dev/null"
