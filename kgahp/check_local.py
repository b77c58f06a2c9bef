"""The checks of `kgahp check` that need no cluster: can the job owner run kgahp, does the
configuration parse (and where each knob's value comes from), do the image knobs parse, are the
state and log directories writable and private.

Permissions are judged from mode bits for the user being checked (owner, groups, other), not with
os.access, so root can check for a job owner; POSIX ACLs are not read.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from kgahp.config import KNOBS, PREFIX, Settings, settings_from_mapping
from kgahp.errors import ConfigError

OK, FAIL, WARN, INFO = "ok", "fail", "warn", "info"


@dataclass
class Result:
    """One line of `kgahp check`."""

    check: str                   # what was checked, e.g. "rbac htcondor-jobs"
    status: str                  # ok, fail, warn or info
    detail: str                  # what was found
    fix: str = ""                # what to do about it (fail and warn)
    data: dict[str, Any] = field(default_factory=dict)   # extra facts for --json

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "status": self.status, "detail": self.detail}
        if self.fix:
            out["fix"] = self.fix
        if self.data:
            out["data"] = self.data
        return out


# ---- users and permission bits -----------------------------------------------------------------
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


# ---- the executable and its interpreter ------------------------------------------------------
def kgahp_script() -> Optional[str]:
    """The `kgahp` command beside this interpreter (what KUBERNETES_GAHP should name)."""
    beside = os.path.join(os.path.dirname(sys.executable), "kgahp")
    if os.path.isfile(beside):
        return beside
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "kgahp" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return None


def shebang(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    return words[0] if words else None


def condor_param(name: str) -> Optional[str]:
    """One HTCondor configuration value, when the bindings and a configuration are there."""
    try:
        import htcondor2

        value = htcondor2.param.get(name)
    except Exception:
        return None
    return None if value is None else str(value)


def check_executable(who: Account, script: Optional[str] = None,
                     interpreter: Optional[str] = None,
                     configured: Optional[str] = None) -> list[Result]:
    """The kgahp script, the Python it names, the kgahp package and Python's own library must
    all be usable by the job owner: the gridmanager starts the GAHP as that user. `configured`
    is KUBERNETES_GAHP from the HTCondor configuration: what the gridmanager will start."""
    import kgahp

    if configured and configured != script:
        out = _check_configured(who, configured, script if script is not None
                                else kgahp_script())
        if out is not None:
            return out
    script = script if script is not None else kgahp_script()
    interpreter = interpreter or (shebang(script) if script else None) or sys.executable
    wanted: list[tuple[str, str, str]] = []
    if script:
        wanted.append(("kgahp script", script, "rx"))
    wanted.append(("interpreter", interpreter, "x"))
    wanted.append(("kgahp package", os.path.dirname(os.path.abspath(kgahp.__file__)), "rx"))
    wanted.append(("Python library", os.path.dirname(os.path.abspath(os.__file__)), "rx"))
    problems = [(what, path, path_problem(path, who, want)) for what, path, want in wanted]
    bad = [(what, path, why) for what, path, why in problems if why]
    shown = script or interpreter
    if bad:
        what, _, why = bad[0]
        return [Result("executable", FAIL, f"the {what} is not usable by {who.name}: {why}",
                       "install kgahp where every job owner can read and run it, e.g. "
                       "/usr/bin/python3 -m venv /opt/kgahp && /opt/kgahp/bin/pip install "
                       "kgahp-*.whl (a venv made from a per-user Python is not)",
                       {"paths": {w: p for w, p, _ in problems},
                        "problems": [f"{w}: {y}" for w, _, y in bad]})]
    out = [Result("executable", OK, f"{shown} and {interpreter} are usable by {who.name}",
                  data={"paths": {w: p for w, p, _ in problems}})]
    if not script:
        out.append(Result("executable", WARN, "no kgahp script beside "
                          f"{sys.executable}; cannot tell what KUBERNETES_GAHP should name",
                          "set KUBERNETES_GAHP to the kgahp script of a system-wide install"))
    return out


def _check_configured(who: Account, configured: str,
                      script: Optional[str]) -> Optional[list[Result]]:
    """KUBERNETES_GAHP must name a kgahp the job owner can run (and its interpreter)."""
    fix = ("set KUBERNETES_GAHP to the kgahp of a system-wide install, e.g. "
           "/opt/kgahp/bin/kgahp")
    why = path_problem(configured, who, "rx")
    if why is None:
        interpreter = shebang(configured)
        why = path_problem(interpreter, who, "x") if interpreter else None
    if why:
        return [Result("executable", FAIL, f"KUBERNETES_GAHP = {configured}: {why}", fix)]
    if script and os.path.realpath(configured) != os.path.realpath(script):
        return [Result("executable", WARN, f"KUBERNETES_GAHP = {configured}, but this check "
                       f"ran {script}: the checks below describe the latter",
                       f"run {configured} check instead")]
    return None


# ---- the configuration and where each knob comes from -----------------------------------------
DEFAULT, CONFIG, ENVIRONMENT = "default", "config file", "environment"


def knob_sources(environ: Optional[dict[str, str]] = None
                 ) -> tuple[dict[str, tuple[str, str]], str]:
    """({knob: (value, source)}, HTCondor's $(LOG)), read the way load_settings reads them:
    htcondor2.param when the bindings are installed (which also applies `_CONDOR_` variables),
    else the `_CONDOR_KGAHP_*` environment variables alone."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, tuple[str, str]] = {}
    log_dir = ""
    param: Any = None
    try:
        import htcondor2

        param = htcondor2.param
    except Exception:  # no bindings or no configuration: the environment still counts
        param = None
    for knob in KNOBS:
        from_env = env.get(f"_CONDOR_{PREFIX}{knob.name}")
        value: Optional[str] = None
        if param is not None:
            try:
                got = param.get(PREFIX + knob.name)
            except Exception:
                got = None
            value = None if got is None else str(got)
        elif from_env is not None:
            value = from_env
        if value is None:
            values[knob.name] = (knob.default, DEFAULT)
        elif from_env is not None and from_env == value:
            values[knob.name] = (value, ENVIRONMENT)
        else:
            values[knob.name] = (value, CONFIG)
    if param is not None:
        try:
            log_dir = str(param.get("LOG") or "")
        except Exception:
            log_dir = ""
    if log_dir and not os.path.isdir(log_dir):
        log_dir = ""
    return values, log_dir


def check_config(who: Account, environ: Optional[dict[str, str]] = None
                 ) -> tuple[Optional[Settings], list[Result]]:
    values, log_dir = knob_sources(environ)
    shown = {f"{PREFIX}{name}": {"value": value, "source": source}
             for name, (value, source) in values.items()}
    changed = sum(1 for _, source in values.values() if source != DEFAULT)
    try:
        settings = settings_from_mapping(
            {name: value for name, (value, source) in values.items() if source != DEFAULT},
            condor_log_dir=log_dir, user=who.name)
    except ConfigError as exc:
        return None, [Result("config", FAIL, str(exc), "correct that knob in the HTCondor "
                             "configuration (condor_config_val -v KNOB shows where it is set)",
                             {"knobs": shown})]
    return settings, [Result("config", OK, f"{len(values)} knobs parse ({changed} set, the rest "
                             "at their defaults)", data={"knobs": shown})]


# ---- images ----------------------------------------------------------------------------------
# A container image reference as container runtimes parse it (the distribution reference
# grammar): [host[:port]/]path[:tag][@digest], path components lower-case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_IMAGE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
                    r":[0-9a-fA-F]{32,})?")


def image_problem(image: str) -> Optional[str]:
    if not image or image != image.strip() or any(c.isspace() for c in image):
        return "contains white space or is empty"
    if not _IMAGE.fullmatch(image):
        return "is not an image reference ([registry/]path[:tag][@digest], path in lower case)"
    return None


def pattern_example(pattern: str) -> str:
    """An image a shell-style pattern matches, to see whether it can match any image at all."""
    text = re.sub(r"\[[^\]]*\]", "a", pattern)
    return text.replace("*", "x").replace("?", "a")


def check_images(settings: Settings) -> list[Result]:
    import fnmatch

    problems: list[str] = []
    for pattern in settings.pod.allowed_images:
        if pattern_example(pattern) and image_problem(pattern_example(pattern)):
            problems.append(f"{PREFIX}ALLOWED_IMAGES pattern {pattern!r} can match no image "
                            f"(e.g. {pattern_example(pattern)!r} "
                            f"{image_problem(pattern_example(pattern))})")
    for knob, image in (("DEFAULT_IMAGE", settings.pod.default_image),
                        ("HELPER_IMAGE", settings.transfer.helper_image)):
        if not image:
            continue
        why = image_problem(image)
        if why:
            problems.append(f"{PREFIX}{knob} = {image!r} {why}")
    default = settings.pod.default_image
    if default and not any(fnmatch.fnmatchcase(default, p) for p in settings.pod.allowed_images):
        problems.append(f"{PREFIX}DEFAULT_IMAGE = {default!r} matches none of "
                        f"{PREFIX}ALLOWED_IMAGES ({', '.join(settings.pod.allowed_images)})")
    if problems:
        return [Result("images", FAIL, "; ".join(problems),
                       f"correct {PREFIX}ALLOWED_IMAGES / {PREFIX}DEFAULT_IMAGE / "
                       f"{PREFIX}HELPER_IMAGE")]
    return [Result("images", OK, f"{len(settings.pod.allowed_images)} allowed-image pattern(s) "
                   f"parse; default image {default or '(none: jobs must name one)'}")]


# ---- state and log directories -------------------------------------------------------------
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


# ---- the configuration a running GAHP started with ---------------------------------------------
def running_file(settings: Settings) -> str:
    return os.path.join(settings.state_dir, f"gahp-{settings.instance}.json")


def record_running(settings: Settings, version: str) -> None:
    """Note, beside the job store, which knob values this GAHP started with: knobs are read once
    per start, and `kgahp check` compares them with the configuration now. Never fails."""
    import json
    import time

    try:
        values, _ = knob_sources()
        record = {"pid": os.getpid(), "started": int(time.time()), "version": version,
                  "knobs": {name: value for name, (value, _) in values.items()}}
        os.makedirs(settings.state_dir, mode=0o700, exist_ok=True)
        path = running_file(settings)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(path + ".tmp", path)
    except (OSError, ValueError, TypeError):
        pass


def _alive_gahp(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"kgahp" in handle.read()
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except OSError:
            return True


def check_running_gahp(settings: Settings, values: dict[str, tuple[str, str]]) -> Result:
    """Whether a running GAHP uses the configuration as it is now."""
    import json
    import time

    path = running_file(settings)
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        pid = int(record["pid"])
        knobs = dict(record["knobs"])
    except FileNotFoundError:
        return Result("running gahp", INFO, f"no GAHP has run for instance {settings.instance} "
                      "yet; the first one will use the configuration shown above")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Result("running gahp", INFO, f"cannot read {path}: {exc}")
    if not _alive_gahp(pid):
        return Result("running gahp", INFO, f"the last GAHP (pid {pid}) has exited; the next "
                      "one will use the configuration shown above")
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(record.get("started", 0))))
    changed = sorted(name for name, (value, _) in values.items()
                     if knobs.get(name, value) != value)
    if changed:
        return Result("running gahp", WARN, f"the GAHP running since {started} (pid {pid}) "
                      f"started with other values of {', '.join(PREFIX + n for n in changed)}; "
                      "knobs are read only when a GAHP starts",
                      f"kill {pid}: the gridmanager restarts and starts a new GAHP, which picks "
                      "up every job again", {"pid": pid, "changed": changed})
    return Result("running gahp", OK, f"the GAHP running since {started} (pid {pid}) uses the "
                  "configuration shown above", data={"pid": pid})
