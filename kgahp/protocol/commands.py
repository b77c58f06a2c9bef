"""The command table: which verbs exist, how many parameters each takes, which pool runs it,
and how a handler's answer (or its failure) becomes a result line. Pure data and small
functions; the server loop (server.py) only looks things up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from kgahp.protocol import replies

INTERNAL_ERROR = "Internal kgahp error; see the kgahp log"


class Handlers(Protocol):
    """The five verbs the service layer implements. Each may block; each runs in a pool thread,
    except a status that `status_now` answers on the protocol thread."""

    def ping(self, batch_type: str) -> tuple[int, str]: ...

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]: ...

    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]: ...

    def status_now(self, job_id: str) -> Optional[tuple[int, str, int, Optional[str]]]:
        """The status answer if memory alone gives it, at once and without blocking; None
        when it needs the API or a wait (then `status` runs in a pool thread)."""
        ...

    def cancel(self, job_id: str) -> tuple[int, str]: ...

    def refresh_proxy(self, job_id: str, proxy_path: str) -> tuple[int, str]: ...


SYNC_COMMANDS = ("ASYNC_MODE_OFF", "ASYNC_MODE_ON", "COMMANDS", "QUIT", "RESULTS", "VERSION")


@dataclass(frozen=True)
class AsyncCommand:
    params: int                  # parameters after the command name, reqid included
    slow: bool                   # runs in the submit/cancel/refresh pool
    run: Callable[[Handlers, str, list[str]], bytes]   # (handlers, reqid, args) -> result line
    fail: Callable[[str, str], bytes]                  # (reqid, message) -> failure line
    # the result at once, on the protocol thread, when memory alone gives it; None: run `run`
    now: Optional[Callable[[Handlers, str, list[str]], Optional[bytes]]] = None


def _run_ping(h: Handlers, reqid: str, args: list[str]) -> bytes:
    code, msg = h.ping(args[0])
    return replies.ping_result(reqid, code, msg)


def _run_submit(h: Handlers, reqid: str, args: list[str]) -> bytes:
    code, msg, job_id = h.submit(args[0])
    return replies.submit_result(reqid, code, msg, job_id)


def _run_status(h: Handlers, reqid: str, args: list[str]) -> bytes:
    code, msg, job_status, ad = h.status(args[0])
    return replies.status_result(reqid, code, msg, job_status, ad)


def _now_status(h: Handlers, reqid: str, args: list[str]) -> Optional[bytes]:
    answer = h.status_now(args[0])
    if answer is None:
        return None
    code, msg, job_status, ad = answer
    return replies.status_result(reqid, code, msg, job_status, ad)


def _run_cancel(h: Handlers, reqid: str, args: list[str]) -> bytes:
    code, msg = h.cancel(args[0])
    return replies.cancel_result(reqid, code, msg)


def _run_refresh(h: Handlers, reqid: str, args: list[str]) -> bytes:
    code, msg = h.refresh_proxy(args[0], args[1])
    return replies.refresh_result(reqid, code, msg)


# The failure line of each command when its handler breaks has the success line's token count.
ASYNC_COMMANDS: dict[str, AsyncCommand] = {
    "BLAH_PING": AsyncCommand(2, False, _run_ping,
                              lambda r, m: replies.ping_result(r, 1, m)),
    "BLAH_JOB_STATUS": AsyncCommand(2, False, _run_status,
                                    lambda r, m: replies.status_result(r, 1, m, 0, None),
                                    now=_now_status),
    "BLAH_JOB_SUBMIT": AsyncCommand(2, True, _run_submit,
                                    lambda r, m: replies.submit_result(r, 1, m, None)),
    "BLAH_JOB_CANCEL": AsyncCommand(2, True, _run_cancel,
                                    lambda r, m: replies.cancel_result(r, 1, m)),
    "BLAH_JOB_REFRESH_PROXY": AsyncCommand(3, True, _run_refresh,
                                           lambda r, m: replies.refresh_result(r, 1, m)),
}

COMMAND_NAMES = tuple(sorted(SYNC_COMMANDS + tuple(ASYNC_COMMANDS)))


def valid_reqid(token: str) -> bool:
    return token.isascii() and token.isdigit() and len(token) <= 18 and int(token) > 0


def printable(text: str, limit: int = 200) -> str:
    """Log-safe text: bytes that are not UTF-8 or not printable shown as escapes."""
    raw = text[:limit].encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")


def job_subject(command: str, args: list[str]) -> str:
    """What a log line may say about a request: the job id, never the ad (it may hold secrets)."""
    return "" if command == "BLAH_JOB_SUBMIT" else printable(args[0])


def result_code(line: bytes) -> str:
    parts = line.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 1 else "?"
