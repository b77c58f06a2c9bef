"""Drive the server in a separate process over pipes, exactly as the gridmanager does."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from protocol_fakes import check_result, output_lines

from kgahp.protocol.escaping import encode_line, split_line

SCRIPT = Path(__file__).resolve().parent / "protocol_slow_gahp.py"
REPLY_LIMIT = 1.0        # seconds; the gridmanager allows 20


class Gahp:
    """A kgahp child process, its stdout read line by line (with arrival times) by a thread."""

    def __init__(self, *args: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.raw = bytearray()
        self.stderr = b""
        self.notices = 0
        self._threads = [threading.Thread(target=self._pump, daemon=True),
                         threading.Thread(target=self._drain_stderr, daemon=True)]
        for t in self._threads:
            t.start()
        self.banner = self.next_line(timeout=20)
        self.banner_seconds = time.monotonic() - self.started

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.raw += raw
            self.lines.put(raw)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def next_line(self, timeout: float = REPLY_LIMIT) -> bytes:
        return self.lines.get(timeout=timeout)

    def send(self, tokens: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode_line(tokens))    # CR LF, escaped like the gridmanager
        self.proc.stdin.flush()

    def request(self, tokens: list[str]) -> tuple[list[str], float]:
        """Send one line; return its reply (async notices skipped) and how long it took."""
        start = time.monotonic()
        self.send(tokens)
        while True:
            reply = split_line(self.next_line())
            if reply != ["R"]:
                return reply, time.monotonic() - start
            self.notices += 1

    def results(self) -> tuple[list[list[str]], float]:
        header, took = self.request(["RESULTS"])
        assert header[0] == "S" and len(header) == 2
        block = [split_line(self.next_line()) for _ in range(int(header[1]))]
        return block, took

    def wait_exit(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:            # everything the child wrote has been read
            t.join(timeout)
        return rc


def handshake(gahp: Gahp) -> None:
    assert gahp.banner.startswith(b"$GahpVersion: 0.1.0 ") and len(gahp.banner) < 150
    reply, _ = gahp.request(["COMMANDS"])
    assert reply[0] == "S" and "BLAH_JOB_SUBMIT" in reply
    assert gahp.request(["ASYNC_MODE_ON"])[0][0] == "S"
    assert gahp.request(["BLAH_PING", "2", "kubernetes"])[0] == ["S"]
    assert gahp.next_line(timeout=5) == b"R\r\n"
    block, _ = gahp.results()
    assert block == [["2", "0", "No error"]]


def request_for(reqid: int) -> tuple[list[str], str]:
    kind = reqid % 5
    if kind == 0:
        ad = f'[ JobDirectory = "home_bl_x_{reqid}"; Arguments = "a b\\\\c"; Cmd = "/bin/echo" ]'
        return ["BLAH_JOB_SUBMIT", str(reqid), ad], "BLAH_JOB_SUBMIT"
    if kind == 1:
        return ["BLAH_JOB_STATUS", str(reqid), f"kubernetes/default/kg-{reqid}"], "BLAH_JOB_STATUS"
    if kind == 2:
        return ["BLAH_JOB_CANCEL", str(reqid), f"kubernetes/default/kg-{reqid}"], "BLAH_JOB_CANCEL"
    if kind == 3:
        return (["BLAH_JOB_REFRESH_PROXY", str(reqid), "kubernetes/default/kg-1", "/tmp/x 509"],
                "BLAH_JOB_REFRESH_PROXY")
    return ["BLAH_PING", str(reqid), "kubernetes"], "BLAH_PING"


def test_fifty_concurrent_requests_like_the_gridmanager() -> None:
    gahp = Gahp()
    handshake(gahp)
    sent: dict[str, str] = {}
    got: dict[str, list[str]] = {}
    slowest = 0.0

    def collect() -> None:
        nonlocal slowest
        block, took = gahp.results()
        slowest = max(slowest, took)
        for result in block:
            check_result(result, sent[result[0]])
            assert result[0] not in got, "a result was delivered twice"
            got[result[0]] = result

    for reqid in range(3, 53):
        tokens, name = request_for(reqid)
        reply, took = gahp.request(tokens)
        assert reply == ["S"]
        slowest = max(slowest, took)
        sent[str(reqid)] = name
        if gahp.notices:                       # the gridmanager answers an R with RESULTS
            gahp.notices = 0
            collect()
    deadline = time.monotonic() + 30
    while len(got) < len(sent):
        assert time.monotonic() < deadline, f"{len(got)} of {len(sent)} results"
        try:
            line = gahp.next_line(timeout=2)   # wait for R, else poll anyway (gm does every 60 s)
            assert line == b"R\r\n", line
        except queue.Empty:
            pass
        collect()
    assert slowest < REPLY_LIMIT, f"slowest reply {slowest:.3f}s"
    assert all(got[r][1] == "0" for r in got)
    assert gahp.proc.stdin is not None
    gahp.proc.stdin.close()                    # the gridmanager just closes the pipe
    assert gahp.wait_exit(timeout=5) == 0
    output_lines(bytes(gahp.raw))              # every line ended properly
    print(f"time to banner: {gahp.banner_seconds * 1000:.0f} ms; "
          f"slowest reply: {slowest * 1000:.1f} ms")


def test_sigterm_exits_promptly_with_handlers_running() -> None:
    gahp = Gahp()
    handshake(gahp)
    assert gahp.request(["BLAH_JOB_SUBMIT", "3", "[ HANG = true ]"])[0] == ["S"]
    for reqid in range(4, 14):
        assert gahp.request(request_for(reqid)[0])[0] == ["S"]
    time.sleep(0.1)
    start = time.monotonic()
    gahp.proc.send_signal(signal.SIGTERM)
    assert gahp.wait_exit(timeout=5) == 0
    assert time.monotonic() - start < 3.5
    output_lines(bytes(gahp.raw))              # no line cut in half


def test_eof_exits_even_with_a_hung_handler() -> None:
    gahp = Gahp()
    handshake(gahp)
    assert gahp.request(["BLAH_JOB_SUBMIT", "3", "[ HANG = true ]"])[0] == ["S"]
    assert gahp.proc.stdin is not None
    start = time.monotonic()
    gahp.proc.stdin.close()
    assert gahp.wait_exit(timeout=5) == 0
    assert time.monotonic() - start < 3.5


def test_stray_output_never_reaches_the_protocol_stream() -> None:
    gahp = Gahp("--noisy", "--min-delay", "0", "--max-delay", "0")
    handshake(gahp)
    assert gahp.request(["BLAH_JOB_STATUS", "3", "kubernetes/a/b"])[0] == ["S"]
    assert gahp.next_line(timeout=5) == b"R\r\n"
    block, _ = gahp.results()
    check_result(block[0], "BLAH_JOB_STATUS")
    assert gahp.proc.stdin is not None
    gahp.proc.stdin.close()
    assert gahp.wait_exit(timeout=5) == 0
    out = bytes(gahp.raw)
    assert b"stray" not in out
    for line in output_lines(out)[1:]:
        tokens = split_line(line)
        assert tokens[0] in ("S", "R") or tokens[0].isdigit(), line
    assert b"stray print from a handler" in gahp.stderr
    assert b"stray warning from a handler" in gahp.stderr
    assert b"stray C-level write to fd 1" in gahp.stderr
