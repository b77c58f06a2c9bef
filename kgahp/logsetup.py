"""Logging in HTCondor's spirit: one file per GAHP instance, one line per event, never stdout."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from typing import Optional

FORMAT = "%(asctime)s.%(msecs)03d [%(process)d] %(levelname)s %(name)s: %(message)s"
DATEFMT = "%m/%d/%y %H:%M:%S"


class SecondFormatter(logging.Formatter):
    """The standard Formatter, with the date text made once per second rather than once per
    record: kgahp logs a line or two per request, hundreds a second under a submit burst, and
    `time.strftime` of the local time was the costliest part of each line. The text is the
    same (`%(asctime)s` has whole seconds; the milliseconds come from `%(msecs)03d`)."""

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt)
        self._cached: tuple[int, str] = (-1, "")    # (second, its text), replaced as one

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        if datefmt != self.datefmt or datefmt is None:   # not the configured format: as is
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._cached
        if cached[0] != second:
            cached = self._cached = (second, time.strftime(datefmt, self.converter(second)))
        return cached[1]


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
    handler.setFormatter(SecondFormatter(FORMAT, DATEFMT))
    # What the format never shows is not gathered for each record either (the logging HOWTO's
    # "Optimization"): the caller's file, line and function (a walk up the stack), the thread
    # and the multiprocessing process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # The client libraries are chatty at DEBUG and may log request bodies (which can hold a
    # proxy); keep them at WARNING whatever our own level.
    for noisy in ("urllib3", "kubernetes", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
