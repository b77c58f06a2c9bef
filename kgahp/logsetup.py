"""Logging in HTCondor's spirit: one file per GAHP instance, one line per event, never stdout."""

from __future__ import annotations

import logging
import os
import sys
import warnings

FORMAT = "%(asctime)s.%(msecs)03d [%(process)d] %(levelname)s %(name)s: %(message)s"
DATEFMT = "%m/%d/%y %H:%M:%S"


def setup_logging(path: str, level: str = "INFO") -> None:
    """Send every log record (ours, the kubernetes client's, urllib3's, warnings) to `path`,
    or to stderr when `path` is empty. The file is created 0600: logs carry no secrets, but
    job ids and paths are nobody else's business."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        handler = logging.StreamHandler(os.fdopen(fd, "a", buffering=1, encoding="utf-8"))
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # The client libraries are chatty at DEBUG and may log request bodies (which can hold a
    # proxy); keep them at WARNING whatever our own level.
    for noisy in ("urllib3", "kubernetes", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
