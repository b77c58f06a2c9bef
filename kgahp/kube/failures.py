"""How a failed Kubernetes request reads to kgahp: the client's and urllib3's exceptions turned
into kgahp's typed errors (`translate`) with the Status message as a sentence, and the backoff
that retries the transient ones, never faster than the server's Retry-After.
"""

from __future__ import annotations

import json
from typing import Optional

from kubernetes.client.rest import ApiException
from tenacity import RetryCallState

from kgahp.errors import ApiError, TransientApiError, api_error


def _status_message(exc: ApiException) -> tuple[str, str]:
    """(message, reason) from a Kubernetes Status body, falling back to the HTTP reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            status = json.loads(body)
            if isinstance(status, dict) and status.get("message"):
                return str(status["message"]), str(status.get("reason") or "")
        except ValueError:
            pass
    return str(exc.reason or f"HTTP {exc.status}"), str(exc.reason or "")


def _retry_after(exc: ApiException) -> Optional[float]:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def translate(exc: BaseException, what: str) -> ApiError:
    """Turn a client/urllib3 exception into kgahp's typed error with a readable sentence."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ApiException):
        message, reason = _status_message(exc)
        status = int(exc.status or 0)
        retry_after = _retry_after(exc) if status not in (404, 409) else None
        return api_error(f"{what}: {message}", status, reason, retry_after)
    # connection refused/reset, timeouts, protocol errors: all transient
    detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return TransientApiError(f"{what}: Kubernetes API unreachable ({detail})", 0, "Unreachable")


class Backoff:
    """Exponential backoff with a floor of the server's Retry-After (never faster than asked)."""

    def __init__(self, initial: float = 0.2, maximum: float = 10.0) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        backoff = min(self.maximum, self.initial * (2 ** (state.attempt_number - 1)))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiError) and exc.retry_after:
            return max(backoff, exc.retry_after)
        return backoff


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientApiError)
