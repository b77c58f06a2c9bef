"""Test support for the protocol tests: a fake backend, an in-process session, reply checks.

FakeHandlers is a stand-in service layer (plausible answers, optional delays); it is not a mock of
the Kubernetes client. Session runs the real server over real pipes, like the gridmanager does.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from kgahp.protocol.escaping import split_line
from kgahp.protocol.server import serve

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPT = DATA / "transcripts" / "gridmanager-25.0.13.txt"

# Result line token counts per command (docs/protocol.md).
RESULT_TOKENS = {
    "BLAH_PING": 3,
    "BLAH_JOB_SUBMIT": 4,
    "BLAH_JOB_STATUS": 5,
    "BLAH_JOB_CANCEL": 3,
    "BLAH_JOB_REFRESH_PROXY": 3,
}


class FakeHandlers:
    """Plausible answers; `delay=(lo, hi)` makes every call sleep that long (seconds).
    `answer_now`: `status_now` answers statuses at once (as the service does from its cache);
    otherwise it declines, and every status runs on a worker."""

    def __init__(self, delay: tuple[float, float] = (0.0, 0.0), seed: int = 1,
                 answer_now: bool = False) -> None:
        self.delay = delay
        self.answer_now = answer_now
        self.ads: list[str] = []
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._next = 0

    def _pause(self) -> None:
        lo, hi = self.delay
        if hi > 0:
            with self._lock:
                seconds = self._rng.uniform(lo, hi)
            time.sleep(seconds)

    def ping(self, batch_type: str) -> tuple[int, str]:
        self._pause()
        self.calls.append(("ping", batch_type))
        if batch_type != "kubernetes":
            return 1, f"Unsupported batch type {batch_type}"
        return 0, ""

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        self._pause()
        with self._lock:
            self.ads.append(ad_text)
            self._next += 1
            n = self._next
        if "DUMMY_FAIL_SUBMIT" in ad_text:
            return 1, "Image not allowed: foo", None
        return 0, "", f"kubernetes/default/kg-{n}"

    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
        self._pause()
        self.calls.append(("status", job_id))
        return self._status_answer(job_id)

    def status_now(self, job_id: str) -> Optional[tuple[int, str, int, Optional[str]]]:
        if not self.answer_now:
            return None
        self.calls.append(("status_now", job_id, threading.current_thread().name))
        return self._status_answer(job_id)

    @staticmethod
    def _status_answer(job_id: str) -> tuple[int, str, int, Optional[str]]:
        if not job_id.startswith("kubernetes/"):
            return 1, "Pod not found", 0, None
        return 0, "", 2, (f'[ BatchJobId = "{job_id}"; JobStatus = 2; '
                          'HoldReason = "Pod \\"x\\" failed"; WorkerNode = "node 17" ]')

    def cancel(self, job_id: str) -> tuple[int, str]:
        self._pause()
        self.calls.append(("cancel", job_id))
        return 0, ""

    def refresh_proxy(self, job_id: str, proxy_path: str) -> tuple[int, str]:
        self._pause()
        self.calls.append(("refresh", job_id, proxy_path))
        return 0, "Proxy renewed"


def output_lines(data: bytes) -> list[bytes]:
    """Cut protocol output into lines; every line must end with CR LF."""
    assert data == b"" or data.endswith(b"\r\n"), data[-50:]
    lines = data.split(b"\n")[:-1]
    for line in lines:
        assert line.endswith(b"\r"), line[:100]
        assert b"\r" not in line[:-1], "raw CR inside a line"
    return [line[:-1] for line in lines]


def check_no_empty_tokens(tokens: Sequence[str]) -> None:
    assert all(t != "" for t in tokens), tokens


def check_result(tokens: Sequence[str], command: str) -> None:
    """A result line has the exact token count for its command and sane fields."""
    assert len(tokens) == RESULT_TOKENS[command], (command, tokens)
    check_no_empty_tokens(tokens)
    assert tokens[0].isdigit() and int(tokens[0]) > 0
    assert tokens[1].lstrip("-").isdigit()
    if command == "BLAH_JOB_SUBMIT":
        assert (tokens[3] == "N/A") == (tokens[1] != "0")
        assert " " not in tokens[3]
    if command == "BLAH_JOB_STATUS" and tokens[1] != "0":
        assert tokens[3:] == ["0", "N/A"]


class Session:
    """The real server in a thread, stdin/stdout on OS pipes, read line by line with timestamps."""

    def __init__(self, handlers: object, *, workers: int = 4, max_queued: int = 1000,
                 max_line: int = 4 * 1024 * 1024, shutdown_grace: float = 2.0) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        self._stdin_w = os.fdopen(in_w, "wb", buffering=0)
        self._out_w = os.fdopen(out_w, "wb")
        stdin_r = os.fdopen(in_r, "rb")
        self.rc: Optional[int] = None
        self.lines: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self.notices = 0

        def run() -> None:
            self.rc = serve(handlers, workers=workers, max_queued=max_queued,  # type: ignore[arg-type]
                            stdin=stdin_r, out=self._out_w, version="0.1.0",
                            max_line=max_line, shutdown_grace=shutdown_grace)
            self._out_w.close()
            stdin_r.close()

        def pump() -> None:
            with os.fdopen(out_r, "rb") as out:
                for raw in out:
                    self.lines.put((time.monotonic(), raw))

        self._server = threading.Thread(target=run, daemon=True)
        self._pump = threading.Thread(target=pump, daemon=True)
        self._server.start()
        self._pump.start()
        self.banner = self.next_raw()

    def next_raw(self, timeout: float = 10.0) -> bytes:
        _, raw = self.lines.get(timeout=timeout)
        assert raw.endswith(b"\r\n"), raw
        return raw

    def next_reply(self, timeout: float = 10.0) -> list[str]:
        """The next line that is not an async `R` notice, split into tokens."""
        while True:
            tokens = split_line(self.next_raw(timeout))
            if tokens == ["R"]:
                self.notices += 1
                continue
            return tokens

    def send(self, line: bytes) -> None:
        self._stdin_w.write(line)

    def command(self, line: bytes) -> list[str]:
        self.send(line + b"\r\n")
        return self.next_reply()

    def results(self) -> list[list[str]]:
        header = self.command(b"RESULTS")
        assert header[0] == "S" and len(header) == 2, header
        block = [split_line(self.next_raw()) for _ in range(int(header[1]))]
        assert ["R"] not in block, "async notice inside a RESULTS block"
        return block

    def close(self, timeout: float = 10.0) -> Optional[int]:
        self._stdin_w.close()
        self._server.join(timeout)
        assert not self._server.is_alive(), "server did not exit on EOF"
        return self.rc
