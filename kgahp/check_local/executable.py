"""Can the job owner run kgahp: the script KUBERNETES_GAHP names (or the `kgahp` beside this
interpreter), the Python its first line names, the kgahp package and Python's own library.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from kgahp.check_local.permissions import Account, path_problem
from kgahp.check_local.result import FAIL, OK, WARN, Result


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
