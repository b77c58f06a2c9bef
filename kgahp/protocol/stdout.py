"""Keep the protocol channel clean: only kgahp's protocol writer may reach the real stdout.

The gridmanager parses every byte on our stdout as a reply (docs/protocol.md), so a stray
`print`, a C library's message or a Python warning there would crash it. `claim_stdout` takes a
private duplicate of fd 1 for the protocol and points fd 1 itself (and `sys.stdout`) at stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import BinaryIO


def claim_stdout() -> BinaryIO:
    """Return a private binary stream on the original stdout; fd 1 now writes to stderr.

    Call once, early, before anything else may write. Python warnings go to logging
    (logger `py.warnings`) from now on.
    """
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    protocol_fd = os.dup(1)             # not inherited by child processes (PEP 446)
    os.dup2(2, 1)                       # C-level writes to fd 1 now land on stderr
    sys.stdout = sys.stderr             # Python-level prints too
    logging.captureWarnings(True)
    return os.fdopen(protocol_fd, "wb")
