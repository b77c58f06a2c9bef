"""Replay every line a real gridmanager sent (tests/data/transcripts) through the real server."""

from __future__ import annotations

import re
import time
from collections import defaultdict

import classad2
import pytest
from protocol_fakes import RESULT_TOKENS, TRANSCRIPT, FakeHandlers, Session, check_result

from kgahp.protocol.escaping import split_line

_GM_LINE = re.compile(r"^\S+ \S+ \[pid (\d+)\] GM->GAHP (.*)$")


def gm_lines_by_process() -> dict[str, list[bytes]]:
    """The gridmanager's lines, one list per GAHP process, as bytes on the wire (CR LF added)."""
    groups: dict[str, list[bytes]] = defaultdict(list)
    with open(TRANSCRIPT, "rb") as f:
        for raw in f:
            m = _GM_LINE.match(raw.rstrip(b"\n").decode("utf-8", "surrogateescape"))
            if m:
                groups[m.group(1)].append(m.group(2).encode("utf-8", "surrogateescape"))
    return dict(groups)




def test_transcript_has_the_commands_we_expect() -> None:
    names = {split_line(line)[0] for lines in gm_lines_by_process().values() for line in lines}
    assert {"COMMANDS", "ASYNC_MODE_ON", "RESULTS", "BLAH_PING", "BLAH_JOB_SUBMIT",
            "BLAH_JOB_STATUS", "BLAH_JOB_CANCEL"} <= names


@pytest.mark.parametrize("pid, lines", sorted(gm_lines_by_process().items()) if TRANSCRIPT.exists()
                         else [])
def test_replay_gridmanager_session(pid: str, lines: list[bytes]) -> None:
    handlers = FakeHandlers()
    session = Session(handlers)
    assert session.banner.startswith(b"$GahpVersion: ")
    pending: dict[str, str] = {}       # reqid -> command, until its result is read
    answered = 0
    sent_ads = []
    for line in lines:
        argv = split_line(line)
        name = argv[0].upper()
        if name == "RESULTS":
            for result in session.results():
                check_result(result, pending.pop(result[0]))
                answered += 1
            continue
        reply = session.command(line)
        if name in RESULT_TOKENS:
            assert reply == ["S"], (line[:80], reply)
            pending[argv[1]] = name
            if name == "BLAH_JOB_SUBMIT":
                sent_ads.append(argv[2])
        elif name == "COMMANDS":
            assert reply[0] == "S" and set(RESULT_TOKENS) <= set(reply[1:])
        else:
            assert reply[0] == "S", (line, reply)
    deadline = time.monotonic() + 10
    while pending:                      # collect what the transcript's RESULTS did not
        assert time.monotonic() < deadline, pending
        for result in session.results():
            check_result(result, pending.pop(result[0]))
            answered += 1
    assert answered > 0
    assert session.close() == 0
    # The submit ad reached the backend exactly as the gridmanager meant it: a parseable ad.
    assert handlers.ads == sent_ads
    for ad_text in handlers.ads:
        ad = classad2.parseOne(ad_text)
        assert str(ad["JobDirectory"]).startswith("home_bl_")
        assert ad["GridResource"] == "batch kubernetes"
