"""Kube.call: a call that succeeds at once is sent once; a transient failure is retried after the
backoff (at least the server's Retry-After) until the deadline; anything else is not retried."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kgahp.config import KubeSettings
from kgahp.errors import NotFoundError, TransientApiError
from kgahp.kube.api import Kube


class _Script:
    """Answers in turn: an exception to raise, or a value to return; records when it ran."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.times: list[float] = []

    def __call__(self) -> Any:
        self.times.append(time.monotonic())
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _kube() -> Kube:
    return Kube(client.ApiClient(client.Configuration()), KubeSettings(qps=0))


def _busy(retry_after: str = "") -> ApiException:
    exc = ApiException(status=503, reason="Service Unavailable")
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


def test_a_call_that_succeeds_is_sent_once() -> None:
    kube, script = _kube(), _Script("ok")
    assert kube.call("reading", script) == "ok"
    assert len(script.times) == 1 and kube.requests == 1


def test_a_transient_failure_is_retried_after_the_backoff(caplog: Any) -> None:
    kube, script = _kube(), _Script(_busy(), _busy("1"), "ok")
    with caplog.at_level(logging.WARNING, logger="kgahp.kube.api"):
        assert kube.call("reading pod p", script) == "ok"
    first, second, third = script.times
    assert second - first >= 0.2 - 0.01          # the first backoff step
    assert third - second >= 1.0 - 0.01          # never sooner than the server's Retry-After
    assert kube.requests == 3
    assert [r.getMessage() for r in caplog.records].count(
        "reading pod p failed (reading pod p: Service Unavailable); retrying") == 2


def test_no_retry_once_the_deadline_has_passed() -> None:
    kube, script = _kube(), _Script(_busy(), "never reached")
    with pytest.raises(TransientApiError):
        kube.call("reading", script, deadline=0)
    assert len(script.times) == 1


def test_lasting_failures_are_not_retried() -> None:
    kube, script = _kube(), _Script(ApiException(status=404, reason="Not Found"), "never")
    with pytest.raises(NotFoundError):
        kube.call("reading", script)
    assert len(script.times) == 1
