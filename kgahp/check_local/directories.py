"""Are the state and log directories writable by the job owner and private to them.
"""

from __future__ import annotations

import os
import stat

from kgahp.check_local.permissions import Account, _mode, path_problem
from kgahp.check_local.result import FAIL, INFO, OK, Result
from kgahp.config import PREFIX, Settings


def _nearest_existing(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def check_private_dir(label: str, path: str, who: Account, knob: str) -> Result:
    """A directory the GAHP writes (made 0700 when missing) must be the user's alone."""
    if not os.path.exists(path):
        parent = _nearest_existing(path)
        why = path_problem(parent, who, "wx")
        if why:
            return Result(label, FAIL, f"{path} does not exist and cannot be made: {why}",
                          f"create it for {who.name} (mode 0700) or set {PREFIX}{knob}")
        return Result(label, OK, f"{path} will be made (mode 0700) on first use")
    why = path_problem(path, who, "rwx")
    if why:
        return Result(label, FAIL, why, f"chown {who.name} {path}; chmod 700 {path} "
                      f"(or set {PREFIX}{knob} to a directory of {who.name}'s)")
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return Result(label, FAIL, f"{path} is not a directory", f"set {PREFIX}{knob}")
    if st.st_mode & 0o077:
        return Result(label, FAIL, f"{path} ({_mode(st)}) is open to other users: it holds job "
                      "ads and file names", f"chmod 700 {path}")
    return Result(label, OK, f"{path} is writable by {who.name} and private")


def check_log(settings: Settings, who: Account) -> Result:
    path = settings.log_file
    if not path:
        return Result("log", INFO, "no log file: kgahp logs to its stderr, which the "
                      "gridmanager does not keep", f"set {PREFIX}LOG or HTCondor's LOG")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path):
        target = _nearest_existing(directory)
        why = path_problem(target, who, "wx")
        if why:
            return Result("log", FAIL, f"log file {path} cannot be created: {why}",
                          f"let {who.name} write {directory}, or set {PREFIX}LOG to a path "
                          f"{who.name} may write")
        return Result("log", OK, f"log file {path} will be created (mode 0600)")
    why = path_problem(path, who, "w")
    if why:
        return Result("log", FAIL, f"log file {why}",
                      f"chown {who.name} {path} or set {PREFIX}LOG to a path {who.name} may write")
    st = os.stat(path)
    if st.st_mode & 0o077:
        return Result("log", FAIL, f"log file {path} ({_mode(st)}) is readable by others",
                      f"chmod 600 {path}")
    return Result("log", OK, f"log file {path} is writable by {who.name} and private")
