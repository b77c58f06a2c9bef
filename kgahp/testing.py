"""Test kit: drive a kgahp process exactly as HTCondor's gridmanager does: the same argv (none),
pipes, CR LF, escaping, handshake, async mode with `R` notifications and RESULTS batches.

Public so that `kgahp demo`, the end-to-end tests and the benchmarks all exercise the real
executable through the real protocol with the same client, through its public methods only.
It also checks what the gridmanager would crash on (wrong token counts, non-`S` immediate
replies, replies slower than its 20 s limit). Nothing in the GAHP itself imports it.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Optional

from kgahp.protocol.escaping import encode_line, split_line

RESULT_TOKENS = {"BLAH_PING": 3, "BLAH_JOB_SUBMIT": 4, "BLAH_JOB_STATUS": 5,
                 "BLAH_JOB_CANCEL": 3, "BLAH_JOB_REFRESH_PROXY": 3}
GM_RESPONSE_TIMEOUT = 20.0


class ProtocolViolation(AssertionError):
    """Something that would make the real gridmanager EXCEPT or core-dump."""


class GahpDriver:
    def __init__(self, env: Optional[Mapping[str, str]] = None,
                 argv: Optional[Sequence[str]] = None, stderr: Optional[IO[bytes]] = None,
                 response_timeout: float = GM_RESPONSE_TIMEOUT) -> None:
        self.argv = list(argv or [sys.executable, "-m", "kgahp"])
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            env=dict(env) if env is not None else None)
        self.response_timeout = response_timeout
        self._lines: queue.Queue[Optional[list[str]]] = queue.Queue()
        self._r_seen = threading.Event()
        self._lock = threading.Lock()
        self._reqids = itertools.count(2)    # the gridmanager starts at 2
        self._pending: dict[int, str] = {}
        self.results: dict[int, list[str]] = {}
        self.max_reply_seconds = 0.0
        self.replies = 0
        self.banner_seconds: Optional[float] = None
        threading.Thread(target=self._read, name="gahp-reader", daemon=True).start()
        self.banner = self._next_line()
        self.banner_seconds = time.monotonic() - self.started

    # ---- raw line I/O
    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            tokens = split_line(raw.rstrip(b"\n"))
            if len(tokens) == 1 and tokens[0].startswith("R") and tokens[0] != "":
                self._r_seen.set()   # async notification: swallowed, as the gridmanager does
                continue
            self._lines.put(tokens)
        self._lines.put(None)

    def _next_line(self) -> list[str]:
        try:
            line = self._lines.get(timeout=self.response_timeout)
        except queue.Empty:
            raise ProtocolViolation(
                f"no reply within {self.response_timeout:.0f} s (the gridmanager would EXCEPT)"
            ) from None
        if line is None:
            raise ProtocolViolation("kgahp closed its stdout")
        return line

    def command(self, *tokens: str) -> list[str]:
        """Send one request line; return the immediate reply's tokens."""
        with self._lock:
            assert self.proc.stdin is not None
            t0 = time.monotonic()
            self.proc.stdin.write(encode_line(tokens))
            self.proc.stdin.flush()
            reply = self._next_line()
            elapsed = time.monotonic() - t0
            self.max_reply_seconds = max(self.max_reply_seconds, elapsed)
            self.replies += 1
            return reply

    def raw_request(self, line: bytes) -> list[str]:
        """Send bytes as one request line (CR LF added) and return the immediate reply's tokens,
        without encoding or checking them (for fuzzers). `R` notifications are still swallowed."""
        with self._lock:
            assert self.proc.stdin is not None
            t0 = time.monotonic()
            self.proc.stdin.write(line + b"\r\n")
            self.proc.stdin.flush()
            reply = self._next_line()
            self.max_reply_seconds = max(self.max_reply_seconds, time.monotonic() - t0)
            self.replies += 1
            return reply

    def wait_notice(self, timeout: float) -> bool:
        """Sleep until kgahp's next `R` notice or `timeout` seconds (the gridmanager's select
        loop); True if one came. RESULTS (poll_results) re-arms it."""
        return self._r_seen.wait(timeout)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    # ---- the gridmanager's conversation
    def handshake(self) -> list[str]:
        commands = self.command("COMMANDS")
        if commands[0] != "S":
            raise ProtocolViolation(f"COMMANDS answered {commands}")
        if "ASYNC_MODE_ON" in commands:
            if self.command("ASYNC_MODE_ON")[0] != "S":
                raise ProtocolViolation("ASYNC_MODE_ON refused")
        return commands[1:]

    def send(self, command: str, *args: str) -> int:
        """Issue an async command; returns its request id."""
        reqid = next(self._reqids)
        reply = self.command(command, str(reqid), *args)
        if not reply or reply[0] != "S":
            raise ProtocolViolation(f"{command} got immediate reply {reply} (gridmanager EXCEPTs)")
        with self._lock:
            self._pending[reqid] = command
        return reqid

    def poll_results(self) -> int:
        """Issue RESULTS and file every result line; returns how many arrived."""
        with self._lock:
            assert self.proc.stdin is not None
            self._r_seen.clear()
            t0 = time.monotonic()
            self.proc.stdin.write(b"RESULTS\r\n")
            self.proc.stdin.flush()
            head = self._next_line()
            if len(head) < 2 or head[0] != "S":
                raise ProtocolViolation(f"RESULTS answered {head}")
            count = int(head[1])
            lines = [self._next_line() for _ in range(count)]
            self.max_reply_seconds = max(self.max_reply_seconds, time.monotonic() - t0)
            for tokens in lines:
                reqid = int(tokens[0])
                command = self._pending.pop(reqid, None)
                if command is None:
                    raise ProtocolViolation(f"result for unknown request {reqid}: {tokens}")
                if len(tokens) != RESULT_TOKENS[command]:
                    raise ProtocolViolation(
                        f"{command} result has {len(tokens)} tokens, not "
                        f"{RESULT_TOKENS[command]}: {tokens} (the gridmanager would core-dump)")
                self.results[reqid] = tokens
            return count

    def drain_results(self) -> list[list[str]]:
        """RESULTS without the bookkeeping of poll_results: every line, unchecked (for fuzzers
        that send requests the driver did not track)."""
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"RESULTS\r\n")
            self.proc.stdin.flush()
            head = self._next_line()
            if len(head) < 2 or head[0] != "S" or not head[1].isdigit():
                raise ProtocolViolation(f"RESULTS answered {head}")
            return [self._next_line() for _ in range(int(head[1]))]

    def wait(self, reqids: Sequence[int], timeout: float = 300.0) -> dict[int, list[str]]:
        """Wait, as the gridmanager does (on R, or polling), until every request has a result."""
        deadline = time.monotonic() + timeout
        want = set(reqids)
        while not want <= set(self.results):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolViolation(f"no result within {timeout:.0f} s for "
                                        f"{sorted(want - set(self.results))}")
            self._r_seen.wait(min(left, 0.25))
            self.poll_results()
        return {r: self.results.pop(r) for r in reqids}

    def call(self, command: str, *args: str, timeout: float = 300.0) -> list[str]:
        reqid = self.send(command, *args)
        return self.wait([reqid], timeout)[reqid]

    # ---- convenience wrappers with decoded results
    def ping(self) -> tuple[int, str]:
        r = self.call("BLAH_PING", "kubernetes")
        return int(r[1]), r[2]

    def submit(self, ad_text: str) -> tuple[int, str, str]:
        r = self.call("BLAH_JOB_SUBMIT", ad_text)
        return int(r[1]), r[2], r[3]

    def status(self, job_id: str) -> tuple[int, str, int, str]:
        r = self.call("BLAH_JOB_STATUS", job_id)
        return int(r[1]), r[2], int(r[3]), r[4]

    def cancel(self, job_id: str) -> tuple[int, str]:
        r = self.call("BLAH_JOB_CANCEL", job_id)
        return int(r[1]), r[2]

    def refresh_proxy(self, job_id: str, path: str) -> tuple[int, str]:
        r = self.call("BLAH_JOB_REFRESH_PROXY", job_id, path)
        return int(r[1]), r[2]

    # ---- ending
    def close(self, timeout: float = 15.0) -> int:
        """Close stdin as the gridmanager does; return kgahp's exit code."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ProtocolViolation("kgahp did not exit on stdin EOF") from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> GahpDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.close()


def condor_env(knobs: Mapping[str, str], base: Optional[Mapping[str, str]] = None) -> dict:
    """An environment that sets KGAHP_ knobs the way HTCondor allows: _CONDOR_KGAHP_<KNOB>."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CONDOR_CONFIG", "/dev/null")   # no HTCondor install needed
    for key, value in knobs.items():
        env[f"_CONDOR_KGAHP_{key}"] = str(value)
    return env
