"""The few exceptions kgahp raises. Each carries the one sentence a job owner or admin will read.

The message of a `KgahpError` goes verbatim into a submit result or a `HoldReason`, so it must be
short, say what is wrong in the user's words, and never contain a secret or a traceback.
"""

from __future__ import annotations


class KgahpError(Exception):
    """Base class: `str(err)` is the user-facing sentence."""


class ConfigError(KgahpError):
    """The admin's configuration (knobs, templates) is unusable."""


class JobAdError(KgahpError):
    """The job ad is malformed or carries a value kgahp cannot use."""


class PolicyError(KgahpError):
    """The job asks for something the admin's policy does not allow."""

    def __init__(self, attribute: str, rule: str, detail: str = "") -> None:
        self.attribute = attribute
        self.rule = rule
        msg = f"{attribute} is not allowed: {rule}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class TransferError(KgahpError):
    """Input or output files could not be moved (size limits, unsafe paths, missing outputs)."""


class StoreError(KgahpError):
    """kgahp's durable job store could not be written (a full disk, a read-only directory)."""


class ApiError(KgahpError):
    """The Kubernetes API refused or failed a request."""

    def __init__(self, message: str, status: int = 0, reason: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


# HTTP statuses worth retrying: throttling, server errors, gateway timeouts. 0 (no answer: the
# connection failed or timed out) is transient too.
TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})


class TransientApiError(ApiError):
    """A failure worth retrying: the API server was unreachable, overloaded or throttling.
    The one way kgahp tells a transient failure from a lasting one."""


def api_error(message: str, status: int = 0, reason: str = "",
              retry_after: float | None = None) -> ApiError:
    """The ApiError for an HTTP status: NotFound, Conflict, Transient or plain."""
    if status == 404:
        return NotFoundError(message, status, reason, retry_after)
    if status == 409:
        return ConflictError(message, status, reason, retry_after)
    if status in TRANSIENT_STATUSES:
        return TransientApiError(message, status, reason, retry_after)
    return ApiError(message, status, reason, retry_after)


class NotFoundError(ApiError):
    """The object does not exist (404)."""


class ConflictError(ApiError):
    """The object already exists or was modified concurrently (409)."""
