"""Users and permission bits: who is being checked (`Account`) and whether mode bits let them
read, write or enter a path. Judged from the mode bits for that user (owner, groups, other),
not with os.access, so root can check for a job owner; POSIX ACLs are not read.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gids: frozenset[int]
    home: str


def account(name: Optional[str] = None) -> Account:
    """The account `name` (default: the one running). KeyError when it does not exist."""
    if name is None:
        uid = os.getuid()
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:   # no passwd entry (containers): what the process itself has
            return Account(str(uid), uid, frozenset({os.getgid(), *os.getgroups()}),
                           os.path.expanduser("~"))
        gids = {os.getgid(), *os.getgroups()}
        return Account(entry.pw_name, uid, frozenset(gids), os.path.expanduser("~"))
    entry = pwd.getpwnam(name)
    gids = set(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, frozenset(gids), entry.pw_dir)


def may(st: os.stat_result, who: Account, want: str) -> bool:
    """Whether `who` has every permission in `want` ("r", "w", "x") on a file with status `st`."""
    if who.uid == 0:   # root reads and writes anything, executes what anyone may execute
        return "x" not in want or bool(st.st_mode & 0o111) or stat.S_ISDIR(st.st_mode)
    if st.st_uid == who.uid:
        bits = {"r": stat.S_IRUSR, "w": stat.S_IWUSR, "x": stat.S_IXUSR}
    elif st.st_gid in who.gids:
        bits = {"r": stat.S_IRGRP, "w": stat.S_IWGRP, "x": stat.S_IXGRP}
    else:
        bits = {"r": stat.S_IROTH, "w": stat.S_IWOTH, "x": stat.S_IXOTH}
    return all(st.st_mode & bits[c] for c in want)


def path_problem(path: str, who: Account, want: str) -> Optional[str]:
    """Why `who` cannot use `path` with permissions `want` (every parent directory must be
    searchable); None when it can. Symbolic links are followed, each hop checked."""
    seen: set[str] = set()
    current = os.path.abspath(path)
    while True:
        parts = Path(current).parts
        for depth in range(1, len(parts)):
            parent = os.path.join(*parts[:depth])
            try:
                st = os.stat(parent)
            except OSError as exc:
                return f"{parent}: {exc.strerror}"
            if not may(st, who, "x"):
                return f"directory {parent} ({_mode(st)}) is not searchable by {who.name}"
        try:
            lst = os.lstat(current)
        except OSError as exc:
            return f"{current}: {exc.strerror}"
        if stat.S_ISLNK(lst.st_mode):
            if current in seen:
                return f"{current}: symbolic link loop"
            seen.add(current)
            target = os.readlink(current)
            current = os.path.normpath(os.path.join(os.path.dirname(current), target))
            continue
        if not may(lst, who, want):
            return (f"{current} ({_mode(lst)}) is not {_verbs(want)} by {who.name}")
        return None


def _mode(st: os.stat_result) -> str:
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return f"{stat.filemode(st.st_mode)} {owner}"


def _verbs(want: str) -> str:
    names = {"r": "readable", "w": "writable", "x": "executable"}
    return " and ".join(names[c] for c in want)
