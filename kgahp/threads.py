"""kgahp's threads, named for the operating system too.

Python before 3.14 keeps a thread's name to itself: `top -H`, `ps -L` and /proc/<pid>/task/*/comm
show every thread as the process. Named, an admin sees which of kgahp's threads is busy
(`gahp-submit-3`, `watch-default`, `reconcile-1`) without a profiler, and the benchmarks read the
CPU of each kind of thread from /proc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from typing import Any, Callable, Optional

_PR_SET_NAME = 15      # prctl(2); Linux keeps 15 bytes of the name
_prctl: Optional[Callable[..., int]] = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):   # no usable C library: names stay Python's own
        _prctl = None


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` (cut to 15 bytes) where the operating system shows it.
    A no-op where that is not possible: a name is a convenience, never a reason to fail."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, name.encode("utf-8", "replace")[:15], 0, 0, 0)


def start_daemon(target: Callable[..., Any], name: str,
                 args: tuple[Any, ...] = ()) -> threading.Thread:
    """Start a daemon thread running target(*args), named `name` for Python and the OS."""
    def run() -> None:
        name_os_thread(name)
        target(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
