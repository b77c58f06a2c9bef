"""The Kubernetes calls kgahp makes, each paced, retried when that is safe, and translated into
kgahp's typed errors. Objects travel as plain JSON dicts (camelCase, exactly as the API sends
them): deserialising into the client's models costs ~1 ms per pod, which a 10,000-job CE cannot
afford, and nothing downstream needs models.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import quote

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException, RESTResponse
from tenacity import Retrying, retry_if_exception, stop_after_delay

from kgahp.config import KubeSettings
from kgahp.errors import NotFoundError, TransientApiError
from kgahp.kube import jsonio
from kgahp.kube.credentials import reauthenticator_of
from kgahp.kube.failures import Backoff, is_transient, translate
from kgahp.kube.ratelimit import ThrottleNotes, TokenBucket

log = logging.getLogger(__name__)

T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"


class Kube:
    """The product's only door to the cluster.

    Requests go through the official client's ApiClient (its configuration, TLS, proxy, connection
    pool and authentication, including token refresh) but not through its generated API classes:
    those validate every argument with pydantic and turn a pod dict into a model and back before
    sending it (37% of a submit's CPU), and importing CoreV1Api alone takes about a second of
    CPU at startup, which recovery waits for. kgahp sends and receives JSON as is.
    """

    list_page_size = 500    # pods per list page, as client-go's reflector asks

    def __init__(self, api_client: client.ApiClient, settings: KubeSettings,
                 *, retry_deadline: float = 240.0) -> None:
        self.api_client = api_client
        self.settings = settings
        self.limiter = TokenBucket(settings.qps, settings.burst)
        self.throttle_notes = ThrottleNotes(self.limiter)
        self.timeout = settings.api_timeout
        # The gridmanager gives an async command 300 s; retries stop well before that.
        self.retry_deadline = retry_deadline
        self.requests = 0

    # ---- plumbing
    def _once(self, what: str, fn: Callable[[], T], secret: bool = False) -> T:
        note = self.throttle_notes.note(self.limiter.acquire(), what)
        if note:
            log.info("%s", note)
        self.requests += 1
        reauth = reauthenticator_of(self.api_client)
        used = reauth.current() if reauth is not None else ""
        try:
            return fn()
        except ApiException as exc:
            # 401: the token expired or was rotated. Once, with fresh credentials (a re-read
            # token file, a reloaded kubeconfig) when they differ from the ones just refused.
            if exc.status != 401 or reauth is None or not reauth(used):
                raise translate(exc, what) from (None if secret else exc)
            log.info("%s: 401 Unauthorized; retrying once with renewed credentials", what)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, what) from (None if secret else exc)
        self.requests += 1
        try:
            return fn()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            if secret:   # the client's exception may quote the request: keep it off the logs
                raise translate(exc, what) from None
            raise translate(exc, what) from exc

    def call(self, what: str, fn: Callable[[], T], *, retry: bool = True,
             deadline: Optional[float] = None, secret: bool = False) -> T:
        """Run one API call; transient failures are retried with backoff until the deadline.
        `secret`: the request carries Secret data, so the cause is not chained."""
        if not retry:
            return self._once(what, fn, secret)
        started = time.monotonic()
        try:   # most calls succeed at once: no retry machinery for them (~15 us a call)
            return self._once(what, fn, secret)
        except TransientApiError as exc:
            failure = [exc]

        def attempt() -> T:
            if failure:   # tenacity's first attempt is the one just made: its failure, replayed
                raise failure.pop()
            return self._once(what, fn, secret)

        limit = self.retry_deadline if deadline is None else deadline
        retrying = Retrying(
            stop=stop_after_delay(max(0.0, limit - (time.monotonic() - started))),
            wait=Backoff(),
            retry=retry_if_exception(is_transient),
            reraise=True,
            before_sleep=lambda s: log.warning(
                "%s failed (%s); retrying", what,
                s.outcome.exception() if s.outcome else "?"),
        )
        return retrying(attempt)

    @staticmethod
    def _json(resp: Any) -> Any:
        data = resp.data if hasattr(resp, "data") else resp.read()
        return jsonio.loads(data) if data else {}

    def request(self, method: str, path: str, *, query: Optional[list[tuple[str, Any]]] = None,
                body: Any = None, content_type: str = JSON,
                timeout: Any = None) -> urllib3.BaseHTTPResponse:
        """Send one request (unpaced, not retried: wrap it in `call`) and return the urllib3
        response unread; a non-2xx answer raises the client's ApiException, as its generated
        methods do. `path` is already quoted; `body` is encoded to JSON here."""
        headers: dict[str, Any] = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        # param_serialize adds the default headers (User-Agent) and authentication, calling the
        # kubeconfig loader's token refresh exactly as a generated method would.
        _, url, headers, _, _ = self.api_client.param_serialize(
            method=method, resource_path=path, query_params=query or None,
            header_params=headers, auth_settings=["BearerToken"])
        data = None if body is None else jsonio.dumps(body)
        limit: Optional[urllib3.Timeout] = None
        if isinstance(timeout, tuple):
            limit = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        elif timeout:
            limit = urllib3.Timeout(total=timeout)
        try:
            resp = self.api_client.rest_client.pool_manager.request(
                method, url, body=data, headers=headers, timeout=limit, preload_content=False)
        except urllib3.exceptions.SSLError as exc:   # as the client's REST layer reports it
            raise ApiException(status=0, reason=f"{type(exc).__name__}\n{exc}") from None
        if not 200 <= resp.status <= 299:
            failed = RESTResponse(resp)
            failed.read()
            raise ApiException.from_response(http_resp=failed, body=None, data=None)
        return resp

    # ---- pods
    def create_pod(self, namespace: str, pod: dict[str, Any], *, dry_run: bool = False) -> dict:
        name = pod.get("metadata", {}).get("name", "?")
        return self._json(self.call(f"creating pod {namespace}/{name}", lambda: self.request(
            "POST", f"/api/v1/namespaces/{_q(namespace)}/pods", body=pod,
            query=[("dryRun", "All")] if dry_run else None, timeout=self.timeout)))

    def get_pod(self, namespace: str, name: str) -> Optional[dict]:
        try:
            return self._json(self.call(f"reading pod {namespace}/{name}", lambda: self.request(
                "GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}",
                timeout=self.timeout)))
        except NotFoundError:
            return None

    def patch_pod_metadata(self, namespace: str, name: str, metadata: dict[str, Any],
                           what: str) -> dict:
        """Merge-patch a pod's labels or annotations (other keys, other fields untouched)."""
        return self._json(self.call(f"{what} pod {namespace}/{name}", lambda: self.request(
            "PATCH", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}",
            body={"metadata": metadata}, content_type=MERGE_PATCH, timeout=self.timeout)))

    def json_patch_pod(self, namespace: str, name: str, ops: list[dict], what: str) -> dict:
        """Apply JSON patch `ops` (RFC 6902) to a pod; a failed `test` op is refused (422)."""
        return self._json(self.call(f"{what} of pod {namespace}/{name}", lambda: self.request(
            "PATCH", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}", body=ops,
            content_type=JSON_PATCH, timeout=self.timeout)))

    def list_pods(self, namespace: str, label_selector: str, *, retry: bool = True,
                  transform: Optional[Callable[[dict], Any]] = None) -> tuple[list[Any], str]:
        """All matching pods and the list's resourceVersion (see `list_all`)."""
        return self.list_all(f"/api/v1/namespaces/{_q(namespace)}/pods",
                             f"pods in {namespace}", label_selector, retry=retry,
                             transform=transform)

    def list_all(self, path: str, what: str, label_selector: str, *, retry: bool = True,
                 transform: Optional[Callable[[dict], Any]] = None) -> tuple[list[Any], str]:
        """Every matching object of a collection and the list's resourceVersion, in pages of
        `list_page_size`. `transform`, when given, is applied to each object as its page
        arrives, so that a caller keeping only part of each never holds a whole namespace of
        full objects (a pod is ~14 KB) at once."""
        items: list[Any] = []
        token: Optional[str] = None
        rv = ""
        while True:
            query: list[tuple[str, Any]] = [("labelSelector", label_selector),
                                            ("limit", self.list_page_size)]
            if token:
                query.append(("continue", token))
            page = self._json(self.call(f"listing {what}", lambda q=query: (  # type: ignore[misc]
                self.request("GET", path, query=q, timeout=max(self.timeout, 60))),
                retry=retry))
            page_items = page.get("items") or []
            items.extend(map(transform, page_items) if transform else page_items)
            meta = page.get("metadata") or {}
            del page, page_items    # the full objects go now, not once the next page is in
            rv = meta.get("resourceVersion") or rv
            token = meta.get("continue")
            if not token:
                return items, rv

    def delete_pod(self, namespace: str, name: str, *,
                   grace_seconds: Optional[int] = None) -> bool:
        """Delete a pod; False when it was already gone (a delete is idempotent)."""
        query: list[tuple[str, Any]] = []
        if grace_seconds is not None:
            query.append(("gracePeriodSeconds", grace_seconds))
        query.append(("propagationPolicy", "Background"))
        try:
            self.call(f"deleting pod {namespace}/{name}", lambda: self.request(
                "DELETE", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}", query=query,
                timeout=self.timeout).read())
            return True
        except NotFoundError:
            return False

    def read_log(self, namespace: str, name: str, container: str,
                 limit_bytes: Optional[int] = None) -> str:
        query: list[tuple[str, Any]] = [("container", container)]
        if limit_bytes is not None:
            query.append(("limitBytes", limit_bytes))
        resp = self.call(f"reading the log of pod {namespace}/{name}", lambda: self.request(
            "GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/log", query=query,
            timeout=max(self.timeout, 120)))
        data = resp.data
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def watch_pods(self, namespace: str, label_selector: str, resource_version: str,
                   timeout_seconds: int) -> Iterator[dict]:
        """Raw watch events (`{"type":..., "object":...}`) of pods (see `watch_all`)."""
        return self.watch_all(f"/api/v1/namespaces/{_q(namespace)}/pods",
                              f"pods in {namespace}", label_selector, resource_version,
                              timeout_seconds)

    def watch_all(self, path: str, what: str, label_selector: str, resource_version: str,
                  timeout_seconds: int) -> Iterator[dict]:
        """Raw watch events of a collection from a resourceVersion.

        Not retried: the cache owns reconnection (it must relist on 410, which a blind retry
        would hide). The official client's Watch helper is not used because it turns an
        ERROR event into a KeyError when deserialisation is off.
        """
        query: list[tuple[str, Any]] = [
            ("allowWatchBookmarks", True), ("labelSelector", label_selector),
            ("resourceVersion", resource_version), ("timeoutSeconds", timeout_seconds),
            ("watch", True)]
        resp = self._once(f"watching {what}", lambda: self.request(
            "GET", path, query=query, timeout=(self.timeout, timeout_seconds + 30)))
        try:
            yield from jsonio.json_lines(resp.stream(amt=None, decode_content=False))
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise translate(exc, f"watching {what}") from exc
        finally:
            resp.close()
            resp.release_conn()

    # ---- events
    def list_events(self, namespace: str, field_selector: str, *, what: str = "") -> dict:
        return self._json(self.call(what or f"listing events in {namespace}", lambda: self.request(
            "GET", f"/api/v1/namespaces/{_q(namespace)}/events",
            query=[("fieldSelector", field_selector)], timeout=self.timeout)))

    # ---- secrets
    def create_secret(self, namespace: str, secret: dict[str, Any]) -> dict:
        name = secret.get("metadata", {}).get("name", "?")
        return self._json(self.call(f"creating secret {namespace}/{name}", lambda: self.request(
            "POST", f"/api/v1/namespaces/{_q(namespace)}/secrets", body=secret,
            timeout=self.timeout), secret=True))

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict:
        return self._json(self.call(f"updating secret {namespace}/{name}", lambda: self.request(
            "PATCH", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}", body=patch,
            content_type=MERGE_PATCH, timeout=self.timeout), secret=True))

    def delete_secret(self, namespace: str, name: str, *, retry: bool = True) -> bool:
        """Delete one secret; False when it was already gone."""
        try:
            self.call(f"deleting secret {namespace}/{name}", lambda: self.request(
                "DELETE", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}",
                timeout=self.timeout).read(), retry=retry)
            return True
        except NotFoundError:
            return False

    def delete_secrets(self, namespace: str, label_selector: str) -> None:
        self.call(f"deleting secrets in {namespace}", lambda: self.request(
            "DELETE", f"/api/v1/namespaces/{_q(namespace)}/secrets",
            query=[("labelSelector", label_selector)], timeout=self.timeout).read())

    # ---- identity and health
    def server_version(self) -> str:
        info = self._json(self.call("reading the API server version", lambda: self.request(
            "GET", "/version/", timeout=10), deadline=20))
        return str(info.get("gitVersion") or "?")

    def can_i(self, verb: str, resource: str, namespace: str,
              subresource: str = "") -> tuple[bool, str]:
        """SelfSubjectAccessReview: may this identity `verb` `resource` in `namespace`?"""
        attributes = {"verb": verb, "resource": resource, "namespace": namespace}
        if subresource:
            attributes["subresource"] = subresource
        body = {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        review = self._json(self.call(f"checking permission to {verb} {resource}", lambda: (
            self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                         body=body, timeout=10)), deadline=20))
        status = review.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")

    def whoami(self) -> Optional[str]:
        """The user name the API server sees (SelfSubjectReview); None where it is not served."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            review = self._json(self.call("asking the API server who we are", lambda: (
                self.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             body=body, timeout=10)), deadline=20))
        except NotFoundError:
            return None
        info = (review.get("status") or {}).get("userInfo") or {}
        return str(info.get("username") or "?")

    # ---- objects an admin must have made (read by `kgahp check`, never by the GAHP)
    def exists(self, what: str, path: str) -> bool:
        """Whether GET `path` finds an object (404: no). The body is read and dropped unseen:
        it may be a Secret."""
        try:
            self.call(what, lambda: self.request("GET", path, timeout=self.timeout).read(),
                      deadline=20)
            return True
        except NotFoundError:
            return False

    def get_namespace(self, name: str) -> Optional[dict]:
        try:
            return self._json(self.call(f"reading namespace {name}", lambda: self.request(
                "GET", f"/api/v1/namespaces/{_q(name)}", timeout=self.timeout), deadline=20))
        except NotFoundError:
            return None

    def preferred_version(self, group: str) -> Optional[str]:
        """The preferred version of an API group (`/apis/GROUP`); None when it is not served."""
        try:
            doc = self._json(self.call(f"discovering API group {group}", lambda: self.request(
                "GET", f"/apis/{_q(group)}", timeout=self.timeout), deadline=20))
        except NotFoundError:
            return None
        preferred = doc.get("preferredVersion") or {}
        return str(preferred.get("version") or "") or None

    def dry_run_pod(self, namespace: str, pod: dict[str, Any]) -> list[str]:
        """Create `pod` with dryRun=All (validation and admission, nothing stored); the
        Warning headers the API server answered with (PodSecurity `warn` mode, deprecations)."""
        name = pod.get("metadata", {}).get("name", "?")
        resp = self.call(f"creating pod {namespace}/{name} (dry run)", lambda: self.request(
            "POST", f"/api/v1/namespaces/{_q(namespace)}/pods", body=pod,
            query=[("dryRun", "All")], timeout=self.timeout), deadline=20)
        resp.read()
        return [_warning_text(w) for w in resp.headers.getlist("Warning")]


# Every (verb, resource, subresource) the methods above use in a job namespace: what the Role
# must grant (`kgahp check` asks a SelfSubjectAccessReview for each).
PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("create", "pods", ""), ("get", "pods", ""), ("list", "pods", ""), ("watch", "pods", ""),
    ("delete", "pods", ""), ("patch", "pods", ""), ("get", "pods", "log"),
    ("list", "events", ""), ("create", "secrets", ""), ("patch", "secrets", ""),
    ("delete", "secrets", ""), ("deletecollection", "secrets", ""),
)


def _warning_text(header: str) -> str:
    """`299 - "text"` (RFC 7234 warn-code, agent, quoted text) -> text."""
    parts = header.split(" ", 2)
    if len(parts) == 3 and parts[0].isdigit():
        text = parts[2].strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                return str(json.loads(text))
            except ValueError:
                return text[1:-1]
        return text
    return header


def _q(segment: str) -> str:
    """One path segment, quoted as the generated client quotes path parameters."""
    return quote(str(segment), safe="")


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

