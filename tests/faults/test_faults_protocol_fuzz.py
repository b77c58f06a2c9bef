"""Hostile bytes on stdin, against the real kgahp executable: every request line gets exactly
one immediate reply the gridmanager can read (S, E or F), every result line has the token count
its command needs, and afterwards the GAHP still works (ping, submit, status)."""

from __future__ import annotations

import time
from typing import Callable

import pytest
from harness import Gahp, drain_results, fuzz_examples, raw_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgahp.model import COMPLETED
from kgahp.protocol.escaping import split_line
from kgahp.testing import RESULT_TOKENS

COMMANDS = [b"BLAH_PING", b"BLAH_JOB_SUBMIT", b"BLAH_JOB_STATUS", b"BLAH_JOB_CANCEL",
            b"BLAH_JOB_REFRESH_PROXY", b"COMMANDS", b"VERSION", b"ASYNC_MODE_ON",
            b"ASYNC_MODE_OFF", b"blah_job_status", b"BLAH_JOB_HOLD", b"NOPE"]
ARGUMENTS = [b"0", b"-1", b"7", b"2", b"99999999999999999999", b"\xff\xfe", b"\x00",
             b"kubernetes/default/kg-nope-0", b"kubernetes", b"[ Cmd = 1 ]", b"/etc/shadow",
             "ünïcødé/☃".encode(), b"\\ ", b"\r"]
ENDS_SESSION = ("QUIT", "RESULTS")   # sent on purpose below, not at random

garbage_line = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from(COMMANDS),
              st.lists(st.one_of(st.sampled_from(ARGUMENTS), st.binary(max_size=40)),
                       max_size=4)).map(lambda t: b" ".join([t[0], *t[1]])),
).map(lambda raw: raw.replace(b"\n", b""))


def _ends_session(line: bytes) -> bool:
    return split_line(line)[0].upper() in ENDS_SESSION


def _check_results(gahp: Gahp) -> int:
    lines = drain_results(gahp.driver)
    for tokens in lines:
        assert tokens[0].isdigit(), tokens
        assert len(tokens) in set(RESULT_TOKENS.values()), tokens
    return len(lines)


def _still_works(gahp: Gahp) -> None:
    # every accepted fuzz request gets its result; wait until they stop coming (their reqids
    # would collide with the driver's own)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 3.0:   # a fuzzed result can come late under load
        if _check_results(gahp):
            quiet_since = time.monotonic()
        time.sleep(0.1)
    assert gahp.driver.proc.poll() is None, "kgahp died"
    assert gahp.driver.command("COMMANDS")[0] == "S"
    assert gahp.driver.command("ASYNC_MODE_ON")[0] == "S"
    assert gahp.driver.ping() == (0, "No error")
    job_id = gahp.submit("after_fuzz.0", KubernetesImage="sim.invalid/ok:100ms")
    gahp.wait_status(job_id, {COMPLETED}, timeout=30)
    log = gahp.log.read_text(errors="replace")
    assert "handler raised" not in log and "Traceback" not in log
    assert gahp.driver.max_reply_seconds < 20


@pytest.mark.timeout(180)
def test_random_request_lines(make_gahp: Callable[..., Gahp]) -> None:
    gahp = make_gahp()
    fuzzed = []

    @settings(max_examples=fuzz_examples(200), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(garbage_line)
    def one_line(line: bytes) -> None:
        if _ends_session(line):
            return
        reply = raw_request(gahp.driver, line)
        fuzzed.append(line)
        assert reply and reply[0] in ("S", "E", "F"), (line, reply)
        if reply[0] == "S" and split_line(line)[0].upper() in ("COMMANDS", "VERSION"):
            assert len(reply) > 1

    one_line()
    assert len(fuzzed) >= 150
    _still_works(gahp)


@pytest.mark.timeout(120)
def test_targeted_malformed_lines(make_gahp: Callable[..., Gahp]) -> None:
    gahp = make_gahp()
    expect_error = [
        b"", b" ", b"\x00", b"\x00\x00BLAH_PING 2 kubernetes", b"\xff\xfe\xfd", b"\xc3\x28",
        b"BLAH_PING", b"BLAH_PING 3", b"BLAH_PING 3 kubernetes extra",
        b"BLAH_JOB_SUBMIT 4", b"BLAH_JOB_STATUS", b"BLAH_JOB_STATUS 5 a b",
        b"BLAH_JOB_CANCEL 6 a b c", b"BLAH_JOB_REFRESH_PROXY 7 onlyone",
        b"BLAH_PING 0 kubernetes", b"BLAH_PING -3 kubernetes", b"BLAH_PING x kubernetes",
        b"BLAH_PING 99999999999999999999 kubernetes", b"BLAH_PING \xd9\xa3 kubernetes",
        b"VERSION extra", b"COMMANDS now", b"RESULTS please", b"BLAH_JOB_HOLD 8 x",
        b"A" * (1 << 20),
    ]
    for line in expect_error:
        reply = raw_request(gahp.driver, line)
        assert reply[0] == "E", (line[:60], reply)

    # a 5 MiB line is past kgahp's 4 MiB limit: discarded, answered E, the stream stays in step
    assert raw_request(gahp.driver, b"BLAH_JOB_SUBMIT 10 [" + b"x" * (5 << 20))[0] == "E"
    # 1 MiB arguments are accepted and answered with a failure result of the right shape
    accepted = [
        b"BLAH_JOB_SUBMIT 11 [" + b"\xff" * (1 << 20),
        b"BLAH_JOB_SUBMIT 12 [\\ Cmd\\ =\\ \"" + b"x" * (1 << 20) + b"\"\\ ]",
        b"BLAH_JOB_STATUS 13 kubernetes/default/" + b"k" * (1 << 20),
        b"BLAH_JOB_CANCEL 14 kubernetes/default/\x00\x01\x02",
        b"BLAH_JOB_STATUS 15 \xff\xfe/\x00",
        b"BLAH_JOB_REFRESH_PROXY 16 kubernetes/default/kg-x-0 /nonexistent/\xff",
        b"BLAH_PING 17 \x00",
        b"BLAH_JOB_STATUS 18 " + b"\\" * 4097,    # odd: the last one escapes the CR
    ]
    for line in accepted:
        assert raw_request(gahp.driver, line)[0] == "S", line[:60]
    got: dict[str, list[str]] = {}
    for _ in range(100):
        for tokens in drain_results(gahp.driver):
            got[tokens[0]] = tokens
        if len(got) == len(accepted):
            break
        time.sleep(0.1)
    assert sorted(got, key=int) == [str(n) for n in range(11, 19)]
    for reqid, command in zip(range(11, 19), ["BLAH_JOB_SUBMIT", "BLAH_JOB_SUBMIT",
                                              "BLAH_JOB_STATUS", "BLAH_JOB_CANCEL",
                                              "BLAH_JOB_STATUS", "BLAH_JOB_REFRESH_PROXY",
                                              "BLAH_PING", "BLAH_JOB_STATUS"]):
        tokens = got[str(reqid)]
        assert len(tokens) == RESULT_TOKENS[command], tokens[:3]
        assert len(" ".join(tokens)) < 8192, (command, len(" ".join(tokens)))
    assert got["11"][1] != "0" and got["12"][1] != "0" and got["15"][1] != "0"
    for unknown in ("13", "15", "18"):
        assert got[unknown][3] != "4", got[unknown][:4]     # unknown is never success
    _still_works(gahp)
