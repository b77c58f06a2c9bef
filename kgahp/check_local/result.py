"""One finding of `kgahp check` (`Result`) and its status words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
