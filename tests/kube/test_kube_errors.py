"""One way to tell a transient API failure: `TransientApiError`. Causes are chained at the
Kubernetes boundary, except for requests that carry Secret data."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from kgahp.config import KubeSettings
from kgahp.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    TransientApiError,
    api_error,
)
from kgahp.kube.api import Kube, translate


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 0])
def test_throttling_server_errors_and_no_answer_are_transient(status: int) -> None:
    assert isinstance(translate(ApiException(status=status, reason="x"), "reading"),
                      TransientApiError)
    assert isinstance(api_error("m", status), TransientApiError)


def test_lost_connections_are_transient() -> None:
    err = translate(urllib3.exceptions.ProtocolError("connection reset"), "reading")
    assert isinstance(err, TransientApiError) and err.status == 0


@pytest.mark.parametrize("status,kind", [(404, NotFoundError), (409, ConflictError),
                                         (403, ApiError), (422, ApiError), (410, ApiError)])
def test_lasting_failures_are_not_transient(status: int, kind: type) -> None:
    err = translate(ApiException(status=status, reason="x"), "reading")
    assert type(err) is kind and not isinstance(err, TransientApiError)


def _refused() -> NoReturn:
    raise ApiException(status=422, reason="Invalid")


def test_the_cause_is_chained_except_for_secret_requests(sim: Any) -> None:
    sim.require_sim()
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    with pytest.raises(ApiError) as plain:
        kube.call("creating pod", _refused, retry=False)
    assert isinstance(plain.value.__cause__, ApiException)
    with pytest.raises(ApiError) as secret:
        kube.call("creating secret", _refused, retry=False, secret=True)
    assert secret.value.__cause__ is None and secret.value.__suppress_context__
