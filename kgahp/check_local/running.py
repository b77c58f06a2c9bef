"""The configuration a running GAHP started with: recorded at its start, and compared by
`kgahp check` with what the configuration says now.
"""

from __future__ import annotations

import os

from kgahp.check_local.knob_sources import knob_sources
from kgahp.check_local.result import INFO, OK, WARN, Result
from kgahp.config import PREFIX, Settings


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
