"""Every line kgahp writes to the gridmanager is formed here, with its token count checked.

The gridmanager ASSERTs on the number of fields of each result line (ping/cancel/refresh 3,
submit 4, status 5; docs/protocol.md) and crashes on a wrong count, so each builder checks its
count before returning, and no token is ever empty (an empty token is written as nothing, which
shifts or drops fields). Messages become one token, at most `MAX_MESSAGE_CHARS` characters.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import BinaryIO, Optional, Union

from kgahp.protocol.escaping import encode_line, escape_token

MAX_MESSAGE_CHARS = 1000
# The gridmanager's reader has a 500 KiB buffer per token (gahp-client.cpp 452); stay below.
MAX_TOKEN_BYTES = 500_000
NO_ERROR = "No error"
UNKNOWN_ERROR = "Unknown error"
NOT_AVAILABLE = "N/A"
THREADS_LIMIT = "Threads limit reached"

ReqId = Union[int, str]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BANNER_LIMIT = 150


class ReplyFormError(AssertionError):
    """A reply would not have the form the gridmanager requires: a bug in kgahp."""


def _line(tokens: Sequence[str], expected: int) -> bytes:
    if len(tokens) != expected:
        raise ReplyFormError(f"reply needs {expected} tokens, got {len(tokens)}")
    if any(t == "" for t in tokens):
        raise ReplyFormError("reply has an empty token")
    if len(tokens) == 1 and tokens[0].startswith("R"):
        raise ReplyFormError("a one-token reply starting with R reads as an async notice")
    return encode_line(tokens)


def _reqid(reqid: ReqId) -> str:
    text = str(reqid).strip()
    if not text.isdigit() or int(text) <= 0:
        raise ReplyFormError(f"request id {reqid!r} is not a positive number")
    return str(int(text))


def message(text: Optional[str], code: int) -> str:
    """One safe, non-empty message token: `No error` on success, never empty or `NULL` on failure.

    `NULL` would read as "no message" to the gridmanager, leaving an empty HoldReason.
    """
    text = " ".join((text or "").split())     # also removes CR/LF/tabs and edge spaces
    if not text or text.upper() == "NULL":
        text = NO_ERROR if code == 0 else UNKNOWN_ERROR
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _fits(token: str) -> bool:
    return 0 < len(escape_token(token).encode("utf-8", "surrogateescape")) <= MAX_TOKEN_BYTES


def _code(code: int) -> str:
    if isinstance(code, bool) or not isinstance(code, int):
        raise ReplyFormError(f"result code {code!r} is not an int")
    return str(code)


# --- result lines (answers to RESULTS)

def ping_result(reqid: ReqId, code: int, msg: Optional[str]) -> bytes:
    """`<reqid> <code> <message>`."""
    return _line([_reqid(reqid), _code(code), message(msg, code)], 3)


def cancel_result(reqid: ReqId, code: int, msg: Optional[str]) -> bytes:
    """`<reqid> <code> <message>`."""
    return _line([_reqid(reqid), _code(code), message(msg, code)], 3)


def refresh_result(reqid: ReqId, code: int, msg: Optional[str]) -> bytes:
    """`<reqid> <code> <message>`."""
    return _line([_reqid(reqid), _code(code), message(msg, code)], 3)


def valid_job_id(job_id: Optional[str]) -> bool:
    """A job id the gridmanager can store as the 4th word of GridJobId."""
    return (bool(job_id) and job_id is not None and job_id.upper() != "NULL"
            and job_id == "".join(job_id.split()) and _fits(job_id))


def submit_result(reqid: ReqId, code: int, msg: Optional[str], job_id: Optional[str]) -> bytes:
    """`<reqid> <code> <message> <job id>`; failure carries `N/A` as job id.

    A success without a usable job id (missing, `NULL`, containing spaces) is turned into a
    failure, because the gridmanager would otherwise record a broken GridJobId.
    """
    if code == 0 and not valid_job_id(job_id):
        code, msg, job_id = 1, "Internal kgahp error: submit produced no usable job id", None
    token = job_id if code == 0 and job_id else NOT_AVAILABLE
    return _line([_reqid(reqid), _code(code), message(msg, code), token], 4)


def status_result(reqid: ReqId, code: int, msg: Optional[str], job_status: int,
                  ad_text: Optional[str]) -> bytes:
    """`<reqid> <code> <message> <JobStatus> <status ad>`; failure carries `0 N/A`.

    A success without ad text gets a minimal `[ JobStatus = n ]` ad: the gridmanager ignores the
    4th token when the ad is NULL. An ad too large for the gridmanager's reader becomes a failure.
    """
    if code == 0:
        if isinstance(job_status, bool) or not isinstance(job_status, int) or job_status <= 0:
            code, msg = 1, "Internal kgahp error: status produced no job status"
        else:
            ad = (ad_text or "").strip() or f"[ JobStatus = {job_status} ]"
            if not _fits(ad):
                code, msg = 1, "Status ad too large for the gridmanager"
            else:
                return _line([_reqid(reqid), "0", message(msg, 0), str(job_status), ad], 5)
    return _line([_reqid(reqid), _code(code), message(msg, code), "0", NOT_AVAILABLE], 5)


# --- return lines (immediate replies to a command)

def success(*words: str) -> bytes:
    """`S` followed by words (each one token)."""
    return _line(["S", *words], 1 + len(words))


def error(msg: str) -> bytes:
    """`E <message>`: unknown command, wrong arguments, unreadable line."""
    return _line(["E", message(msg, 1)], 2)


def failure(msg: str) -> bytes:
    """`F <message>`."""
    return _line(["F", message(msg, 1)], 2)


def threads_limit() -> bytes:
    """The one non-S reply to an async command the gridmanager survives (§2.5)."""
    return failure(THREADS_LIMIT)


def results_header(count: int) -> bytes:
    """`S <n>` starting a RESULTS block of exactly n result lines."""
    if count < 0:
        raise ReplyFormError("negative result count")
    return success(str(count))


ASYNC_NOTICE = b"R\r\n"


# --- the banner (the first line of a session, and the answer to VERSION after `S `)

def banner(version: str, date: Optional[datetime.date] = None) -> bytes:
    """`$GahpVersion: <ver> <Mon> <DD> <YYYY> kgahp\\ Kubernetes\\ GAHP $` + CR LF, < 150 bytes."""
    day = date or datetime.datetime.now(datetime.timezone.utc).date()
    ver = escape_token(" ".join(version.split()) or "0")[:40].rstrip("\\") or "0"
    text = (f"$GahpVersion: {ver} {_MONTHS[day.month - 1]} {day.day:02d} {day.year:04d} "
            "kgahp\\ Kubernetes\\ GAHP $")
    line = text.encode("utf-8", "replace") + b"\r\n"
    assert len(line) < _BANNER_LIMIT
    return line


def write_banner(out: BinaryIO, version: str) -> None:
    """Send the banner now (e.g. before slow start-up work); then pass `banner_sent=True`."""
    out.write(banner(version))
    out.flush()
