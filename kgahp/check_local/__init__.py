"""The checks of `kgahp check` that need no cluster: can the job owner run kgahp, does the
configuration parse (and where each knob's value comes from), do the image knobs parse, are the
state and log directories writable and private.

Permissions are judged from mode bits for the user being checked (owner, groups, other), not with
os.access, so root can check for a job owner; POSIX ACLs are not read.

One module per question: `executable`, `knob_sources`, `images`, `directories`, `running` (the
configuration a running GAHP started with); `permissions` and `result` are what they share.
"""

from __future__ import annotations

from kgahp.check_local.directories import check_log, check_private_dir
from kgahp.check_local.executable import (
    check_executable,
    condor_param,
    kgahp_script,
    shebang,
)
from kgahp.check_local.images import check_images, image_problem, pattern_example
from kgahp.check_local.knob_sources import CONFIG, DEFAULT, ENVIRONMENT, check_config, knob_sources
from kgahp.check_local.permissions import Account, account, may, path_problem
from kgahp.check_local.result import FAIL, INFO, OK, WARN, Result
from kgahp.check_local.running import check_running_gahp, record_running, running_file

__all__ = [
    "CONFIG", "DEFAULT", "ENVIRONMENT", "FAIL", "INFO", "OK", "WARN", "Account", "Result",
    "account", "check_config", "check_executable", "check_images", "check_log",
    "check_private_dir", "check_running_gahp", "condor_param", "image_problem", "kgahp_script",
    "knob_sources", "may", "path_problem", "pattern_example", "record_running", "running_file",
    "shebang",
]
