from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.protocol import replies
from kgahp.protocol.escaping import split_line

FAST = settings(max_examples=150, deadline=None)


def tokens(line: bytes) -> list[str]:
    assert line.endswith(b"\r\n")
    return split_line(line)


def test_success_results_say_no_error() -> None:
    assert replies.ping_result(2, 0, "") == b"2 0 No\\ error\r\n"
    assert tokens(replies.cancel_result("15", 0, None)) == ["15", "0", "No error"]
    assert tokens(replies.refresh_result(9, 0, "Proxy renewed")) == ["9", "0", "Proxy renewed"]


def test_submit_success_and_failure() -> None:
    assert tokens(replies.submit_result(7, 0, "", "kubernetes/osg/ce-1")) == [
        "7", "0", "No error", "kubernetes/osg/ce-1"]
    assert tokens(replies.submit_result(7, 1, "Image not allowed: foo", "ignored")) == [
        "7", "1", "Image not allowed: foo", "N/A"]


@pytest.mark.parametrize("bad_id", [None, "", "NULL", "null", "a b", "x\ny"])
def test_submit_success_without_usable_id_becomes_failure(bad_id: str | None) -> None:
    got = tokens(replies.submit_result(3, 0, "", bad_id))
    assert got[1] == "1" and got[3] == "N/A" and "job id" in got[2]


def test_status_success_failure_and_missing_ad() -> None:
    ad = '[ JobStatus = 4; ExitCode = 1 ]'
    assert tokens(replies.status_result(12, 0, "", 4, ad)) == ["12", "0", "No error", "4", ad]
    assert tokens(replies.status_result(12, 1, "Pod not found", 2, ad)) == [
        "12", "1", "Pod not found", "0", "N/A"]
    assert tokens(replies.status_result(12, 0, "", 2, None)) == [
        "12", "0", "No error", "2", "[ JobStatus = 2 ]"]
    assert tokens(replies.status_result(12, 0, "", 0, ad))[1:] == [
        "1", "Internal kgahp error: status produced no job status", "0", "N/A"]


def test_status_ad_too_large_for_gridmanager_becomes_failure() -> None:
    got = tokens(replies.status_result(5, 0, "", 2, "[ A = \"" + "x" * 600_000 + "\" ]"))
    assert got == ["5", "1", "Status ad too large for the gridmanager", "0", "N/A"]


def test_failure_message_never_empty_or_null() -> None:
    assert tokens(replies.cancel_result(4, 1, ""))[2] == "Unknown error"
    assert tokens(replies.cancel_result(4, 1, "NULL"))[2] == "Unknown error"
    assert tokens(replies.ping_result(4, 0, "  \r\n "))[2] == "No error"


def test_message_truncated_to_1000_chars() -> None:
    msg = tokens(replies.ping_result(2, 1, "y" * 5000))[2]
    assert len(msg) == 1000 and msg.endswith("...")


@pytest.mark.parametrize("reqid", [0, "0", "abc", "", -3, "1 2"])
def test_bad_reqid_is_refused(reqid: object) -> None:
    with pytest.raises(replies.ReplyFormError):
        replies.ping_result(reqid, 0, "")  # type: ignore[arg-type]


def test_return_lines() -> None:
    assert replies.success() == b"S\r\n"
    assert replies.threads_limit() == b"F Threads\\ limit\\ reached\r\n"
    assert replies.error("expected 2 parameters, 1 found") == (
        b"E expected\\ 2\\ parameters,\\ 1\\ found\r\n")
    assert replies.results_header(0) == b"S 0\r\n"


def test_single_r_token_is_refused() -> None:
    with pytest.raises(replies.ReplyFormError):
        replies._line(["Results"], 1)


_msg = st.one_of(st.none(), st.text(max_size=1500),
                 st.binary(max_size=100).map(lambda b: b.decode("utf-8", "surrogateescape")))


@FAST
@given(st.integers(min_value=1, max_value=990_000_000), st.integers(-5, 300), _msg,
       st.one_of(st.none(), st.text(max_size=60)), st.integers(-1, 10),
       st.one_of(st.none(), st.text(max_size=300)))
def test_every_result_has_its_token_count(reqid: int, code: int, msg: str | None,
                                          job_id: str | None, job_status: int,
                                          ad: str | None) -> None:
    for line, count in (
        (replies.ping_result(reqid, code, msg), 3),
        (replies.cancel_result(reqid, code, msg), 3),
        (replies.refresh_result(reqid, code, msg), 3),
        (replies.submit_result(reqid, code, msg, job_id), 4),
        (replies.status_result(reqid, code, msg, job_status, ad), 5),
    ):
        got = tokens(line)
        assert len(got) == count and all(got) and got[0] == str(reqid)
        assert len(got[2]) <= replies.MAX_MESSAGE_CHARS
        assert b"\n" not in line[:-1] and b"\r" not in line[:-2]
