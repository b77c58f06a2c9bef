"""Scripted container outcomes: what a container "does" when no real process can show it.

A pod reaches a scripted outcome through its image (``sim.invalid/<outcome>[:<duration>]``, so a job
ad's image alone is enough) or through the pod annotation ``sim.kgahp.io/outcome`` with the same
vocabulary (with or without the ``sim.invalid/`` prefix). Pure parsing; the kubelet acts on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

SCRIPTED_REGISTRY = "sim.invalid/"
OUTCOME_ANNOTATION = "sim.kgahp.io/outcome"
DEFAULT_SECONDS = 1.0

# kinds
EXIT = "exit"                      # run `seconds`, then exit `exit_code` (ok: 0, signalS: 128+S)
SLEEP = "sleep"                    # run until deleted
PULL_ERROR = "pull-error"          # ErrImagePull / ImagePullBackOff forever
INVALID_NAME = "invalid-name"      # InvalidImageName
CONFIG_ERROR = "config-error"      # CreateContainerConfigError
OOM = "oom"                        # terminated OOMKilled, 137, after `seconds`
EVICT = "evict"                    # once per spec string: kubelet eviction after `seconds`
PREEMPT = "preempt"                # once per spec string: scheduler preemption after `seconds`
NODE_LOST = "node-lost"            # once per spec string: node stops reporting after `seconds`
SLOW_DELETE = "slow-delete"        # runs until deleted, ignores SIGTERM (uses the full grace)
STUCK_TERMINATING = "stuck-terminating"  # runs until deleted, never confirms the deletion

# Outcomes that happen to the first pod with a given spec string only; later pods run like `ok`.
ONCE_KINDS = frozenset({EVICT, PREEMPT, NODE_LOST})
# Outcomes whose container never starts.
NEVER_STARTS = frozenset({PULL_ERROR, INVALID_NAME, CONFIG_ERROR})
# Outcomes whose container runs until the pod is deleted.
RUNS_UNTIL_DELETED = frozenset({SLEEP, SLOW_DELETE, STUCK_TERMINATING})


@dataclass(frozen=True)
class Outcome:
    kind: str
    exit_code: int = 0
    seconds: float = DEFAULT_SECONDS
    spec: str = ""                 # the text it was parsed from (key of the once-rule)

    @property
    def ignores_sigterm(self) -> bool:
        return self.kind in (SLOW_DELETE, STUCK_TERMINATING)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(ms|s|m)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_NUMBERED = re.compile(r"^(exit|signal)(\d{1,3})$")
_TIMED_KINDS = frozenset({"ok", OOM, EVICT, PREEMPT, NODE_LOST})
_UNTIMED_KINDS = frozenset(NEVER_STARTS | RUNS_UNTIL_DELETED)


def parse_duration(text: str) -> Optional[float]:
    """'2s' -> 2.0, '500ms' -> 0.5, '1.5' -> 1.5, '1m' -> 60.0; None when not a duration."""
    match = _DURATION.match(text.strip())
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_outcome(spec: str) -> Optional[Outcome]:
    """Parse 'sim.invalid/exit3:2s', 'exit3:2s', 'ok', 'oom:500ms'...; None when not an outcome."""
    text = spec.strip()
    if text.startswith(SCRIPTED_REGISTRY):
        text = text[len(SCRIPTED_REGISTRY):]
    name, _, tag = text.partition(":")
    seconds = DEFAULT_SECONDS
    if tag and tag != "latest":
        parsed = parse_duration(tag)
        if parsed is None:
            return None
        seconds = parsed
    numbered = _NUMBERED.match(name)
    if numbered:
        number = int(numbered.group(2))
        code = number if numbered.group(1) == "exit" else 128 + number
        if code > 255:
            return None
        return Outcome(EXIT, exit_code=code, seconds=seconds, spec=spec)
    if name == "ok":
        return Outcome(EXIT, exit_code=0, seconds=seconds, spec=spec)
    if name in _TIMED_KINDS:
        return Outcome(name, exit_code=137 if name == OOM else 0, seconds=seconds, spec=spec)
    if name in _UNTIMED_KINDS:
        return Outcome(name, seconds=seconds, spec=spec)
    return None


def is_scripted_image(image: str) -> bool:
    return image.startswith(SCRIPTED_REGISTRY)


def outcome_for(
    image: str, annotations: Optional[dict[str, str]], run_processes: bool
) -> Optional[Outcome]:
    """What a container does: a scripted Outcome, or None to run a real local process.

    The annotation wins over the image; a `sim.invalid/` image that names no known outcome cannot be
    pulled (pull-error); with run_processes off every other image behaves like `ok`.
    """
    annotation = (annotations or {}).get(OUTCOME_ANNOTATION)
    if annotation:
        parsed = parse_outcome(annotation)
        if parsed is not None:
            return parsed
    if is_scripted_image(image):
        return parse_outcome(image) or Outcome(PULL_ERROR, spec=image)
    if not run_processes:
        return Outcome(EXIT, exit_code=0, seconds=DEFAULT_SECONDS, spec=image)
    return None


def image_with_tag(image: str) -> str:
    """The reference a kubelet pulls: the image with ':latest' when it names no tag or digest."""
    last = image.rsplit("/", 1)[-1]
    return image if (":" in last or "@" in image) else image + ":latest"
