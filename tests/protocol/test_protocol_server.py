from __future__ import annotations

import io
import logging
import threading
import time
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_fakes import (
    RESULT_TOKENS,
    FakeHandlers,
    Session,
    check_no_empty_tokens,
    check_result,
    output_lines,
)

from kgahp.errors import PolicyError
from kgahp.protocol.escaping import split_line
from kgahp.protocol.server import COMMAND_NAMES, INTERNAL_ERROR, banner, serve

EXPECTED_COMMANDS = ("S ASYNC_MODE_OFF ASYNC_MODE_ON BLAH_JOB_CANCEL BLAH_JOB_REFRESH_PROXY "
                     "BLAH_JOB_STATUS BLAH_JOB_SUBMIT BLAH_PING COMMANDS QUIT RESULTS VERSION")


def wait_results(session: Session, count: int, timeout: float = 10.0) -> list[list[str]]:
    got: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} results"
        got += session.results()
        if len(got) < count:
            time.sleep(0.01)
    return got


def test_banner_form() -> None:
    import datetime
    line = banner("0.1.0", datetime.date(2026, 1, 5))
    assert line == b"$GahpVersion: 0.1.0 Jan 05 2026 kgahp\\ Kubernetes\\ GAHP $\r\n"
    assert len(banner("9" * 500)) < 150


def test_handshake_and_sync_commands() -> None:
    s = Session(FakeHandlers())
    assert s.banner.startswith(b"$GahpVersion: 0.1.0 ")
    assert " ".join(s.command(b"COMMANDS")) == EXPECTED_COMMANDS
    assert s.command(b"commands")[0] == "S"          # command names are case-insensitive
    assert s.command(b"VERSION")[:2] == ["S", "$GahpVersion:"]
    assert s.command(b"ASYNC_MODE_ON") == ["S", "Async mode on"]
    assert s.command(b"BLAH_PING 2 kubernetes") == ["S"]
    assert wait_results(s, 1) == [["2", "0", "No error"]]
    assert s.notices == 1
    assert s.command(b"RESULTS") == ["S", "0"]
    assert s.command(b"QUIT") == ["S"]
    assert s.close() == 0


def test_every_async_command_result_form() -> None:
    h = FakeHandlers()
    s = Session(h)
    for line in (b"BLAH_JOB_SUBMIT 3 [\\ JobDirectory\\ =\\ \"d\\ 1\"\\ ]",
                 b"BLAH_JOB_SUBMIT 4 [\\ X\\ =\\ \"DUMMY_FAIL_SUBMIT\"\\ ]",
                 b"BLAH_JOB_STATUS 5 kubernetes/default/kg-1",
                 b"BLAH_JOB_STATUS 6 bogus",
                 b"blah_job_cancel 7 kubernetes/default/kg-1",
                 b"BLAH_JOB_REFRESH_PROXY 8 kubernetes/default/kg-1 /tmp/x509\\ up",
                 b"BLAH_PING 9 slurm"):
        assert s.command(line) == ["S"]
    got = {r[0]: r for r in wait_results(s, 7)}
    assert got["3"] == ["3", "0", "No error", "kubernetes/default/kg-1"]
    assert got["4"] == ["4", "1", "Image not allowed: foo", "N/A"]
    assert got["5"][:4] == ["5", "0", "No error", "2"] and 'WorkerNode = "node 17"' in got["5"][4]
    assert got["6"] == ["6", "1", "Pod not found", "0", "N/A"]
    assert got["7"] == ["7", "0", "No error"]
    assert got["8"] == ["8", "0", "Proxy renewed"]
    assert got["9"] == ["9", "1", "Unsupported batch type slurm"]
    assert h.ads == ['[ JobDirectory = "d 1" ]', '[ X = "DUMMY_FAIL_SUBMIT" ]']
    assert ("refresh", "kubernetes/default/kg-1", "/tmp/x509 up") in h.calls
    assert s.close() == 0


@pytest.mark.parametrize("line, reply", [
    (b"FOO", ["E", "Unknown command"]),
    (b"", ["E", "Unknown command"]),
    (b"BLAH_PING 2", ["E", "expected 2 parameters, 1 found"]),
    (b"BLAH_JOB_REFRESH_PROXY 2 a", ["E", "expected 3 parameters, 2 found"]),
    (b"BLAH_PING 2 kubernetes extra", ["E", "expected 2 parameters, 3 found"]),
    (b"BLAH_PING  2 kubernetes", ["E", "expected 2 parameters, 3 found"]),
    (b"RESULTS now", ["E", "expected 0 parameters, 1 found"]),
    (b"BLAH_PING 0 kubernetes", ["E", "Invalid request id"]),
    (b"BLAH_PING x2 kubernetes", ["E", "Invalid request id"]),
    (b"BLAH_PING -3 kubernetes", ["E", "Invalid request id"]),
])
def test_bad_requests_get_e(line: bytes, reply: list[str]) -> None:
    s = Session(FakeHandlers())
    assert s.command(line) == reply
    assert s.command(b"RESULTS") == ["S", "0"]   # nothing was dispatched
    assert s.close() == 0


def test_oversize_line_gets_e_and_server_continues() -> None:
    s = Session(FakeHandlers(), max_line=5 * 1024 * 1024)
    reply = s.command(b"BLAH_JOB_SUBMIT 3 " + b"x" * (6 * 1024 * 1024))
    assert reply[0] == "E" and len(reply) == 2
    assert s.command(b"BLAH_PING 4 kubernetes") == ["S"]
    assert wait_results(s, 1) == [["4", "0", "No error"]]
    assert s.close() == 0


class Broken(FakeHandlers):
    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        raise RuntimeError("secret-token-abc in a traceback")

    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
        return ("not", "a", "tuple")  # type: ignore[return-value]

    def cancel(self, job_id: str) -> tuple[int, str]:
        raise PolicyError("Namespace", "not in KGAHP_ALLOWED_NAMESPACES")


def test_handler_errors_become_failure_results(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kgahp.protocol.server")
    s = Session(Broken())
    for line in (b"BLAH_JOB_SUBMIT 3 [\\ Environment\\ =\\ \"TOKEN=hunter2\"\\ ]",
                 b"BLAH_JOB_STATUS 4 kubernetes/a/b", b"BLAH_JOB_CANCEL 5 kubernetes/a/b"):
        assert s.command(line) == ["S"]
    got = {r[0]: r for r in wait_results(s, 3)}
    assert got["3"] == ["3", "1", INTERNAL_ERROR, "N/A"]
    assert got["4"] == ["4", "1", INTERNAL_ERROR, "0", "N/A"]
    assert got["5"] == ["5", "1", "Namespace is not allowed: not in KGAHP_ALLOWED_NAMESPACES"]
    assert s.command(b"BLAH_PING 6 kubernetes") == ["S"]     # still serving
    assert wait_results(s, 1) == [["6", "0", "No error"]]
    assert s.close() == 0
    assert "RuntimeError" in caplog.text                        # the traceback is logged
    assert "hunter2" not in caplog.text                         # the ad never is
    assert "reqid=6 cmd=BLAH_PING" in caplog.text and "code=0" in caplog.text


class Gate(FakeHandlers):
    """Submits block until released, so back-pressure is deterministic."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        self.release.wait(10)
        return super().submit(ad_text)


def test_back_pressure_and_status_not_stuck_behind_submits() -> None:
    h = Gate()
    s = Session(h, workers=1, max_queued=1)
    assert s.command(b"BLAH_JOB_SUBMIT 2 [\\ ]") == ["S"]    # runs (and blocks)
    assert s.command(b"BLAH_JOB_SUBMIT 3 [\\ ]") == ["S"]    # waits: 1 waiting
    assert s.command(b"BLAH_JOB_SUBMIT 4 [\\ ]") == ["F", "Threads limit reached"]
    # The status pool is separate: a status is answered while every submit worker is stuck.
    assert s.command(b"BLAH_JOB_STATUS 5 kubernetes/a/b") == ["S"]
    got = wait_results(s, 1)
    assert [r[0] for r in got] == ["5"]
    h.release.set()
    got = wait_results(s, 2)
    assert sorted(r[0] for r in got) == ["2", "3"]
    assert s.close() == 0


def test_a_status_answered_from_memory_needs_no_worker() -> None:
    """Every worker is stuck on a slow call, yet a status `status_now` answers comes back
    at once (on the protocol thread), in the same form as a worker's; one it declines waits
    for a worker and `status` gives it."""
    h = FakeHandlers(delay=(1.5, 1.5), answer_now=True)
    s = Session(h, workers=2)
    s.command(b"ASYNC_MODE_ON")
    for reqid in (2, 3):                      # both status workers sleep 1.5 s
        assert s.command(b"BLAH_PING %d kubernetes" % reqid) == ["S"]
    t0 = time.monotonic()
    assert s.command(b"BLAH_JOB_STATUS 4 kubernetes/a/b") == ["S"]
    got = wait_results(s, 1)
    assert time.monotonic() - t0 < 1.0
    assert got == [["4", "0", "No error", "2",
                    '[ BatchJobId = "kubernetes/a/b"; JobStatus = 2; '
                    'HoldReason = "Pod \\"x\\" failed"; WorkerNode = "node 17" ]']]
    check_result(got[0], "BLAH_JOB_STATUS")
    assert [c[:2] for c in h.calls] == [("status_now", "kubernetes/a/b")]
    assert not h.calls[0][2].startswith("gahp-")         # not a pool thread
    h.answer_now = False
    assert s.command(b"BLAH_JOB_STATUS 5 kubernetes/c/d") == ["S"]
    got = wait_results(s, 3, timeout=15)
    assert sorted(r[0] for r in got) == ["2", "3", "5"]
    assert ("status", "kubernetes/c/d") in h.calls
    assert s.close() == 0


class BrokenNow(FakeHandlers):
    def status_now(self, job_id: str) -> Optional[tuple[int, str, int, Optional[str]]]:
        raise RuntimeError("cache broke")


def test_a_failing_answer_from_memory_is_a_failure_result_and_serving_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    s = Session(BrokenNow())
    assert s.command(b"BLAH_JOB_STATUS 7 kubernetes/a/b") == ["S"]
    assert wait_results(s, 1) == [["7", "1", INTERNAL_ERROR, "0", "N/A"]]
    assert s.command(b"BLAH_PING 8 kubernetes") == ["S"]     # the protocol thread lives on
    assert wait_results(s, 1) == [["8", "0", "No error"]]
    assert s.close() == 0
    assert "cache broke" in caplog.text


def test_one_notice_per_results_cycle_and_none_when_async_off() -> None:
    s = Session(FakeHandlers())
    assert s.command(b"BLAH_PING 2 kubernetes") == ["S"]
    wait_results(s, 1)
    assert s.notices == 0                                     # async mode is off
    s.command(b"ASYNC_MODE_ON")
    for reqid in range(3, 13):
        s.command(b"BLAH_PING %d kubernetes" % reqid)
    time.sleep(0.3)
    got = wait_results(s, 10)
    assert sorted(int(r[0]) for r in got) == list(range(3, 13))
    assert 1 <= s.notices <= 2                               # not one per result
    s.command(b"ASYNC_MODE_OFF")
    s.command(b"BLAH_PING 13 kubernetes")
    wait_results(s, 1)
    before = s.notices
    assert s.command(b"RESULTS") == ["S", "0"]
    assert s.notices == before
    assert s.close() == 0


def test_results_are_oldest_first() -> None:
    s = Session(FakeHandlers(), workers=1)
    for reqid in range(2, 8):
        s.command(b"BLAH_JOB_CANCEL %d kubernetes/x/y" % reqid)   # one slow worker: in order
    got = wait_results(s, 6)
    assert [r[0] for r in got] == ["2", "3", "4", "5", "6", "7"]
    s.close()


def test_eof_does_not_wait_for_hung_handlers() -> None:
    h = Gate()
    s = Session(h, workers=2, shutdown_grace=0.5)
    s.command(b"BLAH_JOB_SUBMIT 2 [\\ ]")
    started = time.monotonic()
    assert s.close(timeout=5) == 0
    assert time.monotonic() - started < 2.0
    h.release.set()


# --- no input line makes the server crash or say something malformed

_commands = st.sampled_from(sorted(RESULT_TOKENS) + list(COMMAND_NAMES) + ["blah_ping", "X"])
_arg = st.one_of(st.sampled_from(["kubernetes", "0", "7", "kubernetes/a/b", "", "NULL"]),
                 st.binary(max_size=30).map(lambda b: b.decode("latin-1")))


def _structured(cmd: str, args: list[str]) -> bytes:
    return " ".join([cmd, *args]).encode("utf-8", "surrogateescape")


_line = st.one_of(
    st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"")),
    st.builds(_structured, _commands, st.lists(_arg, max_size=4)),
    st.builds(lambda n, r: b"BLAH_JOB_STATUS %d %s" % (n, r), st.integers(-2, 10**12),
              st.sampled_from([b"kubernetes/a/b", b"x\x00y", b"\xff\\ \\\\"])),
    st.just(b"A" * 3000 + b"\x00\xff"),
)


class _Sink(io.BytesIO):
    def close(self) -> None:  # serve() must not close its streams, but stay safe
        pass


def run_script(lines: list[bytes], *, max_queued: int = 5) -> list[list[str]]:
    out = _Sink()
    stdin = io.BytesIO(b"".join(line + b"\r\n" for line in lines))
    rc = serve(FakeHandlers(), workers=2, max_queued=max_queued, stdin=stdin, out=out,
               version="0.1.0", max_line=2000)
    assert rc == 0
    return [split_line(line) for line in output_lines(out.getvalue())]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=25), st.booleans())
def test_fuzz_no_crash_no_malformed_reply(lines: list[bytes], async_on: bool) -> None:
    prefix = [b"ASYNC_MODE_ON"] if async_on else []
    # Each request is one line: a raw LF would make two (framing has its own tests).
    script = [*prefix, *(line.replace(b"\n", b"") for line in lines), b"RESULTS"]
    out = run_script(script)
    assert out[0][0] == "$GahpVersion:"
    commands: dict[str, str] = {}
    replies = [t for t in out[1:] if t != ["R"]]
    i = 0
    quit_seen = False
    for line in script:
        argv = split_line(line)
        reply = replies[i]
        i += 1
        check_no_empty_tokens(reply)
        assert reply[0] in ("S", "E", "F"), reply
        name = argv[0].upper()
        if name == "QUIT" and len(argv) == 1:
            assert reply == ["S"]
            quit_seen = True
            break
        if reply[0] == "E" or reply[0] == "F":
            assert len(reply) == 2
            if reply[0] == "F":
                assert reply[1] == "Threads limit reached"
            continue
        if name in RESULT_TOKENS:
            assert reply == ["S"]
            commands[str(int(argv[1]))] = name
        if name == "RESULTS":
            count = int(reply[1])
            for result in replies[i:i + count]:
                check_result(result, commands[result[0]])
            i += count
    assert i == len(replies), "one reply per request line, nothing more"
    assert quit_seen or split_line(script[-1]) == ["RESULTS"]


def test_banner_written_early_is_not_repeated() -> None:
    from kgahp.protocol.server import write_banner

    out = _Sink()
    write_banner(out, "0.1.0")
    serve(FakeHandlers(), workers=1, max_queued=1, stdin=io.BytesIO(b"VERSION\r\n"), out=out,
          version="0.1.0", banner_sent=True)
    lines = output_lines(out.getvalue())
    assert len(lines) == 2 and lines[0].startswith(b"$GahpVersion: 0.1.0 ")
    assert lines[1] == b"S " + lines[0]


class Logging(FakeHandlers):
    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        logging.getLogger("kgahp.test.submit").info("made the pod of %s", ad_text)
        return super().submit(ad_text)


def test_an_answered_status_poll_is_logged_at_debug_everything_else_at_info(
        caplog: pytest.LogCaptureFixture) -> None:
    """The gridmanager polls every job again and again: at INFO the log is not a list of
    those polls, but a failed poll, a submit and a ping are there."""
    caplog.set_level(logging.INFO, logger="kgahp.protocol.server")
    s = Session(FakeHandlers(answer_now=True))
    for line in (b"BLAH_JOB_STATUS 2 kubernetes/a/b", b"BLAH_JOB_STATUS 3 not-a-job-id",
                 b"BLAH_JOB_SUBMIT 4 [\\ ]", b"BLAH_PING 5 kubernetes"):
        assert s.command(line) == ["S"]
    wait_results(s, 4)
    assert s.close() == 0
    logged = {r.getMessage().split()[0]: r.levelname for r in caplog.records
              if r.getMessage().startswith("reqid=")}
    assert logged == {"reqid=3": "INFO", "reqid=4": "INFO", "reqid=5": "INFO"}
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="kgahp.protocol.server")
    s = Session(FakeHandlers())                       # answered on a worker: the same
    assert s.command(b"BLAH_JOB_STATUS 6 kubernetes/a/b") == ["S"]
    wait_results(s, 1)
    assert s.close() == 0
    assert [r.levelname for r in caplog.records
            if r.getMessage().startswith("reqid=6 cmd=BLAH_JOB_STATUS")] == ["DEBUG"]


def test_what_a_request_logged_is_in_the_log_before_its_result_is_read() -> None:
    # kgahp writes log lines in batches; an admin (or a test) reading a result must find in
    # the log what that request logged
    from kgahp.logsetup import BatchedLineHandler

    stream = io.StringIO()
    handler = BatchedLineHandler(stream, interval=60.0)    # only a flush writes
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        s = Session(Logging())
        s.command(b"ASYNC_MODE_ON")
        assert s.command(b"BLAH_JOB_SUBMIT 2 [A=1]") == ["S"]
        got = wait_results(s, 1)
        assert got[0][:2] == ["2", "0"]
        assert "made the pod of [A=1]" in stream.getvalue()
        s.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
