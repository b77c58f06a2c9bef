"""Reading the client-side request logs of benchmarked kgahp processes (see counted_kgahp.py):
counts by verb/resource/subresource in the simulator's own key format, rates, and how long a
thread waited after a 429."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    sent: float          # time.monotonic() when urlopen was called
    answered: float      # when the response headers (or the failure) came back
    thread: int
    method: str
    status: int          # 0 = no response
    url: str             # path?query

    @property
    def key(self) -> str:
        return classify(self.method, self.url)


def read(paths: Iterable[str]) -> list[Request]:
    """Every request logged in these files (missing files hold none), ordered by send time."""
    out: list[Request] = []
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            for line in fh:
                parts = line.rstrip("\n").split(" ", 5)
                if len(parts) != 6:
                    continue          # a line cut by SIGKILL
                try:
                    out.append(Request(float(parts[0]), float(parts[1]), int(parts[2]),
                                       parts[3], int(parts[4]), parts[5]))
                except ValueError:
                    continue
    out.sort(key=lambda r: r.sent)
    return out


def classify(method: str, url: str) -> str:
    """'verb/resource/subresource' as the apiserver's audit (and the simulator's counter) names
    a request: create/pods/, get/pods/log, watch/pods/, get//version/ for non-resource paths."""
    split = urlsplit(url)
    path = split.path.rstrip("/") or "/"
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        rest = parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return f"{method.lower()}/{path}/"
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if method == "GET":
        watch = (parse_qs(split.query).get("watch") or [""])[0].lower() in ("1", "true", "yes")
        verb = "get" if name else ("watch" if watch else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
    return f"{verb}/{resource}/{sub}"


def counts(requests: Iterable[Request]) -> dict[str, int]:
    return dict(sorted(Counter(r.key for r in requests).items()))


def between(requests: Sequence[Request], start: float, end: float) -> list[Request]:
    return [r for r in requests if start <= r.sent <= end]


def waits_after(requests: Sequence[Request], status: int = 429) -> list[float]:
    """For every answer with `status`, seconds until the same thread sent its next request
    (answers after which the thread sent nothing more are left out)."""
    by_thread: dict[int, list[Request]] = {}
    for r in requests:
        by_thread.setdefault(r.thread, []).append(r)
    waits = []
    for mine in by_thread.values():
        for this, following in zip(mine, mine[1:]):
            if this.status == status:
                waits.append(following.sent - this.answered)
    return waits


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events within any `window` seconds (times sorted)."""
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best

