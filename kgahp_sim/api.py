"""The HTTP face of the sim: a kube-apiserver v1.36 look-alike served by aiohttp.

One catch-all handler parses the path (like the apiserver's request-info resolver), then
authentication, authorization, fault injection and request counting happen in order, and a
small per-verb handler talks to the Store. Everything runs on the sim's single event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from kgahp_sim import admission, discovery, tables, validation
from kgahp_sim.defaulting import (
    GROUP_OF,
    KIND_OF,
    api_version,
    default_secret,
    keep_qos_class,
)
from kgahp_sim.faults import FaultRule, Faults, status_for
from kgahp_sim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from kgahp_sim.podlogs import serve_log
from kgahp_sim.selectors import SelectorError, field_matcher, label_matcher
from kgahp_sim.simconfig import SimConfig
from kgahp_sim.stats import RequestStats
from kgahp_sim.store import (
    CLUSTER_SCOPED,
    RESOURCES,
    ApiStatusError,
    Store,
    clone,
    new_uid,
    not_found,
    now_rfc3339,
)
from kgahp_sim.watchstream import WatchStream
from kgahp_sim.wire import BASE_HEADERS, Route, dump, int_param, parse_route, truthy

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
log = logging.getLogger(__name__)

ADMIN_USER = "kubernetes-admin"
RESTRICTED_USER = "sim-user"
ANONYMOUS = "system:anonymous"
SUBRESOURCES = {"pods": {"status", "log", "binding", "eviction"}, "namespaces": {"status"},
                "nodes": {"status"}, "jobs": {"status"}}
VERSION_INFO = {
    "major": "1", "minor": "36", "emulationMajor": "1", "emulationMinor": "36",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "35", "gitVersion": "v1.36.2",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.26.4", "compiler": "gc",
    "platform": "linux/amd64",
}
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/json-patch+json", "application/apply-patch+yaml")


def _encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\u0000"},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["rv"]), str(data["start"]).rstrip("\u0000")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ApiStatusError(
            400, "BadRequest",
            "invalid continue token: continue key is not valid: invalid character '\\u0081' "
            "looking for beginning of value") from exc


class SimApi:
    def __init__(self, store: Store, config: SimConfig, *, stats: RequestStats | None = None,
                 faults: Faults | None = None, future_rv_wait: float = 3.0,
                 log_path: Callable[[str, str, str], Path] | None = None,
                 anonymous_admin: bool = False) -> None:
        self.store = store
        self.config = config
        self.stats = stats or RequestStats()
        self.faults = faults or Faults()
        self.future_rv_wait = future_rv_wait
        self.log_path = log_path
        # kubectl (client-go) sends no bearer token over plain http; this lets it in anyway.
        self.anonymous_admin = anonymous_admin
        self.address = "127.0.0.1:6443"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_response_prepare.append(_strip_server_header)
        return app

    # ----- the request pipeline ------------------------------------------------------------
    def _user(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if not auth:
            return ADMIN_USER if self.anonymous_admin else ANONYMOUS
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token == self.config.token:
            return ADMIN_USER
        if token == self.config.restricted_token:
            return RESTRICTED_USER
        if token in self.config.tokens:
            from kgahp_sim import tokens

            return ADMIN_USER if tokens.valid(self.config, token) else None
        return None

    @staticmethod
    def _verb(method: str, route: Route, is_watch: bool) -> str:
        if method == "GET":
            if route.name:
                return "get"
            return "watch" if is_watch else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if route.name else "deletecollection"}.get(method, "")

    def _forbidden(self, user: str, verb: str, route: Route) -> ApiStatusError:
        resource = route.resource + (f"/{route.subresource}" if route.subresource else "")
        scope = (f'in the namespace "{route.namespace}"' if route.namespace
                 else "at the cluster scope")
        group = route.group
        subject = f'{route.resource} "{route.name}"' if route.name else route.resource
        details: dict = {"name": route.name} if route.name else {}
        details["kind"] = route.resource
        return ApiStatusError(
            403, "Forbidden",
            f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
            f'group "{group}" {scope}', details)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        pretty = (truthy(request.query.get("pretty"))
                  or request.headers.get("User-Agent", "").startswith(("curl", "Wget",
                                                                        "Mozilla/5.0")))
        try:
            if request.method in WRITE_METHODS:
                # A write the server has received completes even if its client goes away, as
                # on a kube-apiserver: a GAHP killed mid-create may still have made the pod.
                await request.read()   # the whole body first (kept by aiohttp for later)
                return await asyncio.shield(self._dispatch(request, pretty))
            return await self._dispatch(request, pretty)
        except ApiStatusError as err:
            return self._status_response(err, pretty)
        except ConnectionResetError:
            raise
        except Exception:
            log.exception("sim api: internal error on %s %s", request.method, request.path)
            return self._status_response(
                ApiStatusError(500, "InternalError", "Internal error occurred: sim bug"), pretty)

    def _status_response(self, err: ApiStatusError, pretty: bool = False,
                         extra_headers: dict | None = None) -> web.Response:
        headers = {**BASE_HEADERS, **err.headers, **(extra_headers or {})}
        body = dump(err.status(), pretty)
        resp = web.Response(status=err.code, body=body, headers=headers,
                            content_type="application/json")
        if len(body) > 2048:
            resp.enable_chunked_encoding()  # Go's net/http buffers 2 KiB, then chunks
        return resp

    def _json(self, obj: Any, status: int = 200, pretty: bool = False,
              warnings: list[str] | None = None) -> web.Response:
        headers = dict(BASE_HEADERS)
        body = dump(obj, pretty)
        resp = web.Response(status=status, body=body, headers=headers,
                            content_type="application/json")
        if len(body) > 2048:
            resp.enable_chunked_encoding()  # Go's net/http buffers 2 KiB, then chunks
        for w in warnings or []:
            resp.headers.add("Warning", "299 - " + json.dumps(w))
        return resp

    async def _dispatch(self, request: web.Request, pretty: bool) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        is_watch = truthy(request.query.get("watch"))
        route = parse_route(path)
        if self.faults.is_down():
            return self._drop(request)
        user = self._user(request)
        if user is None:
            raise ApiStatusError(401, "Unauthorized", "Unauthorized")
        if route is None:
            raise ApiStatusError(404, "NotFound", "the server could not find the requested "
                                 "resource", {})
        verb = self._verb(request.method, route, is_watch)
        self.stats.record(verb if not route.non_resource else request.method.lower(),
                          route.resource or path, route.subresource)
        rule = self.faults.pick(request.method, path, is_watch)
        if rule is not None:
            if rule.latency:
                await asyncio.sleep(rule.latency)
            if rule.drop:
                return self._drop(request)
            if rule.status:
                reason, message = status_for(rule.status)
                headers = ({"Retry-After": str(rule.retry_after)}
                           if rule.retry_after is not None else {})
                details = ({"retryAfterSeconds": rule.retry_after}
                           if rule.retry_after is not None else None)
                raise ApiStatusError(rule.status, reason, message, details, headers)
        if route.non_resource:
            return self._non_resource(request, path, user, pretty)
        if route.group in ("authorization.k8s.io", "authentication.k8s.io"):
            return await self._review(request, route, user, pretty)
        if route.resource not in RESOURCES or route.group != GROUP_OF.get(route.resource, ""):
            raise ApiStatusError(404, "NotFound",
                                 "the server could not find the requested resource", {})
        if user != ADMIN_USER:
            raise self._forbidden(user, verb, route)
        if route.subresource and route.subresource not in SUBRESOURCES.get(route.resource, ()):
            raise ApiStatusError(404, "NotFound",
                                 "the server could not find the requested resource", {})
        if route.resource in CLUSTER_SCOPED and route.namespace:
            raise ApiStatusError(404, "NotFound",
                                 "the server could not find the requested resource", {})
        return await self._resource(request, route, verb, pretty, rule)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Abort the TCP connection: the client sees it closed without any response."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500)

    # ----- non-resource endpoints ----------------------------------------------------------
    def _non_resource(self, request: web.Request, path: str, user: str,
                      pretty: bool) -> web.Response:
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(body=b"ok", headers=BASE_HEADERS,
                                content_type="text/plain", charset="utf-8")
        if path == "/version":
            return web.Response(body=json.dumps(VERSION_INFO, indent=2).encode(),
                                headers=BASE_HEADERS, content_type="application/json")
        if user == ANONYMOUS:
            raise ApiStatusError(
                403, "Forbidden",
                f'forbidden: User "{ANONYMOUS}" cannot get path "{path}"', {})
        if path.startswith("/openapi/"):
            from kgahp_sim import openapi

            answer = openapi.serve(request, path)
            if answer is not None:
                return answer
        if path == "/api":
            return self._json({"kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [
                                   {"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}]},
                              pretty=pretty)
        if path == "/api/v1":
            return self._json(discovery.core_v1(), pretty=pretty)
        if path == "/apis":
            return self._json(discovery.group_list(), pretty=pretty)
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "apis" and parts[2] == "v1":
            doc = discovery.group_version(parts[1])
            if doc is not None:
                return self._json(doc, pretty=pretty)
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource",
                             {})

    async def _review(self, request: web.Request, route: Route, user: str,
                      pretty: bool) -> web.Response:
        if request.method != "POST" or route.name:
            raise ApiStatusError(405, "MethodNotAllowed",
                                 'the server does not allow this method on the requested '
                                 'resource', {})
        if user == ANONYMOUS:
            raise self._forbidden(user, "create", route)
        body = await self._body(request, "SelfSubjectAccessReview")
        if route.resource == "selfsubjectaccessreviews":
            review = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                      "metadata": {"creationTimestamp": None}, "spec": body.get("spec", {}),
                      "status": {"allowed": user == ADMIN_USER}}
            return self._json(review, 201, pretty)
        if route.resource == "selfsubjectreviews":
            groups = (["system:masters", "system:authenticated"] if user == ADMIN_USER
                      else ["sim-users", "system:authenticated"])
            review = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                      "metadata": {"creationTimestamp": now_rfc3339()},
                      "status": {"userInfo": {"username": user, "uid": f"{user}-uid",
                                              "groups": groups}}}
            return self._json(review, 201, pretty)
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource",
                             {})

    # ----- resources -----------------------------------------------------------------------
    async def _body(self, request: web.Request, kind: str) -> Any:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            # The sim speaks JSON only (kubectl >= 1.32 sends imperative creates as protobuf).
            # Answer as an apiserver does for a media type a resource lacks, not with a 400
            # that blames the object.
            raise ApiStatusError(415, "UnsupportedMediaType",
                                 "the body of the request was in an unknown format - accepted "
                                 "media types include: application/json, application/yaml", {})
        raw = await request.read()
        try:
            return json.loads(raw) if raw else {}
        except ValueError as exc:
            snippet = raw[:30].decode(errors="replace")
            raise ApiStatusError(
                400, "BadRequest",
                f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                f"version/kind; json parse error: unexpected end of JSON input ({snippet} ...)"
            ) from exc

    async def _resource(self, request: web.Request, route: Route, verb: str, pretty: bool,
                        rule: FaultRule | None) -> web.StreamResponse:
        if route.subresource == "log":
            return await serve_log(request, self.store, route, self.log_path)
        if route.subresource == "binding":
            return await self._binding(request, route, pretty)
        if route.subresource == "eviction":
            return await self._eviction(request, route, pretty)
        if verb == "get":
            obj = self.store.get(route.resource, route.namespace, route.name)
            if tables.wants_table(request.headers.get("Accept", "")):
                return self._json(tables.table(route.resource, [obj], {
                    "resourceVersion": obj["metadata"].get("resourceVersion", "")}), pretty=pretty)
            return self._json(obj, pretty=pretty)
        if verb == "list":
            return await self._list(request, route, pretty)
        if verb == "watch":
            stream = WatchStream(self.store, route, request.query, self.config.bookmark_interval)
            return await stream.serve(request, rule)
        if verb == "create":
            return await self._create(request, route, pretty)
        if verb == "delete":
            return await self._delete(request, route, pretty)
        if verb == "deletecollection":
            return await self._delete_collection(request, route, pretty)
        if verb == "patch":
            return await self._patch(request, route, pretty)
        if verb == "update":
            return await self._put(request, route, pretty)
        raise ApiStatusError(405, "MethodNotAllowed",
                             "the server does not allow this method on the requested resource",
                             {})

    async def _create(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        if route.name or route.subresource:
            raise ApiStatusError(405, "MethodNotAllowed",
                                 "the server does not allow this method on the requested "
                                 "resource", {})
        kind = KIND_OF[route.resource]
        body = await self._body(request, kind)
        query = request.query
        mode = query.get("fieldValidation", "") or "Warn"
        warnings = validation.check_decode(route.resource, body, mode == "Strict")
        if mode == "Ignore":
            warnings = []
        meta = body.get("metadata") or {}
        body_ns = meta.get("namespace")
        if route.resource not in CLUSTER_SCOPED and body_ns and body_ns != route.namespace:
            raise ApiStatusError(400, "BadRequest", "the namespace of the provided object does "
                                 "not match the namespace sent on the request")
        dry_run = query.get("dryRun") == "All"
        existing_name = meta.get("name")
        if existing_name and self.store.peek(route.resource, route.namespace,
                                             existing_name) is not None:
            err = ApiStatusError(409, "AlreadyExists",
                                 f'{route.resource} "{existing_name}" already exists',
                                 {"name": existing_name, "kind": route.resource})
            resp = self._status_response(err, pretty)
            for w in warnings:
                resp.headers.add("Warning", "299 - " + json.dumps(w))
            return resp
        if route.resource == "pods":
            from kgahp_sim import kueue

            kueue.mutate_pod(self.config, body)   # the stand-in's webhook, when enabled
        if route.resource == "jobs":
            from kgahp_sim import kueue

            kueue.mutate_job(self.config, body)   # the Job webhook: suspended until admitted
        validate_admission = admission.admit_create(self.store, route.resource, route.namespace,
                                                    body)
        warnings += validation.validate_create(route.resource, body)
        warnings += validate_admission()
        body.pop("status", None) if route.resource == "pods" else None
        created = self.store.create(route.resource, route.namespace, body, dry_run=dry_run,
                                    copy=False)
        return self._json(created, 201, pretty, warnings)

    async def _list(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        query = request.query
        rv_raw, match = query.get("resourceVersion"), query.get("resourceVersionMatch")
        validation.check_list_options(rv_raw, match, watch=False)
        if rv_raw not in (None, "", "0"):
            rv = validation.parse_rv(rv_raw, watch=False)
            if match == "Exact" and rv != self.store.rv and rv < max(
                    self.store.compacted_rv, self.store.rv):
                raise ApiStatusError(410, "Expired",
                                     "The resourceVersion for the provided list is too old.")
            if rv > self.store.rv:
                await self._wait_for_rv(rv)
        try:
            by_label = label_matcher(query.get("labelSelector", ""))
            by_field = field_matcher(route.resource, query.get("fieldSelector", ""))
        except SelectorError as err:
            raise ApiStatusError(400, "BadRequest", str(err)) from err
        limit = int_param(query, "limit") or 0
        token = query.get("continue", "")
        list_rv = self.store.rv
        start = ""
        if token:
            token_rv, start = _decode_continue(token)
            if token_rv < self.store.compacted_rv:
                raise ApiStatusError(
                    410, "Expired",
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.",
                    headers={})
            list_rv = token_rv
        all_ns = route.resource not in CLUSTER_SCOPED and not route.namespace
        items: list[dict] = []
        more = False
        remaining = 0
        last_key = ""
        selective = bool(query.get("labelSelector") or query.get("fieldSelector"))
        objs = self.store.scan(route.resource, route.namespace)
        begin = 0
        if start and not all_ns:   # names in key order: a page starts by bisection, not a scan
            begin = bisect.bisect_right(objs, start, key=lambda o: o["metadata"]["name"])
        for index in range(begin, len(objs)):
            obj = objs[index]
            meta = obj["metadata"]
            key = f"{meta.get('namespace')}/{meta['name']}" if all_ns else meta["name"]
            if start and key <= start:
                continue
            if not (by_label(obj) and by_field(obj)):
                continue
            if limit and len(items) >= limit:
                more = True
                if selective:            # no remainingItemCount: one more match is enough
                    break
                if not all_ns:           # every later object matches and sorts after start
                    remaining = len(objs) - index
                    break
                remaining += 1
                continue
            items.append(obj)
            last_key = key
        list_meta: dict = {"resourceVersion": str(list_rv)}
        if more:
            list_meta["continue"] = _encode_continue(list_rv, last_key)
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                list_meta["remainingItemCount"] = remaining
        if tables.wants_table(request.headers.get("Accept", "")):
            return self._json(tables.table(route.resource, items, list_meta), pretty=pretty)
        body = {"kind": KIND_OF[route.resource] + "List",
                "apiVersion": api_version(route.resource),
                "metadata": list_meta,
                "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                          for o in items]}
        return self._json(body, pretty=pretty)

    async def _wait_for_rv(self, rv: int) -> None:
        deadline = time.monotonic() + self.future_rv_wait
        while self.store.rv < rv and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.store.rv < rv:
            raise ApiStatusError(
                504, "Timeout",
                f"Timeout: Too large resource version: {rv}, current: {self.store.rv}",
                {"causes": [{"reason": "ResourceVersionTooLarge",
                             "message": "Too large resource version"}], "retryAfterSeconds": 1},
                {"Retry-After": "1"})

    async def _delete_options(self, request: web.Request) -> dict:
        """DeleteOptions from the body and the query (the query wins), validated."""
        options = await self._body(request, "DeleteOptions") if request.body_exists else {}
        if not isinstance(options, dict):
            options = {}
        query = request.query
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int_param(query, "gracePeriodSeconds")
        policy = options.get("propagationPolicy", query.get("propagationPolicy"))
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            raise validation.options_invalid(
                "DeleteOptions", "propagationPolicy", "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
                '"Orphan", "nil"')
        options["propagationPolicy"] = policy
        if query.get("dryRun") == "All":
            options["dryRun"] = ["All"]
        return options

    async def _delete(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        options = await self._delete_options(request)
        if route.resource == "jobs":
            return self._delete_job(route, options, pretty)
        obj, removed = self.store.delete(
            route.resource, route.namespace, route.name,
            grace_seconds=options.get("gracePeriodSeconds"),
            uid_precondition=(options.get("preconditions") or {}).get("uid"),
            dry_run=options.get("dryRun") == ["All"])
        if route.resource in ("pods", "namespaces"):
            accepted = (options.get("orphanDependents") is False
                        or options["propagationPolicy"] == "Foreground")
            return self._json(obj, 202 if accepted and not removed else 200, pretty)
        details = {"name": route.name, "group": route.group, "kind": route.resource,
                   "uid": obj["metadata"].get("uid")}
        if not route.group:
            del details["group"]
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": details}
        return self._json(status, 200, pretty)

    def _delete_job(self, route: Route, options: dict, pretty: bool) -> web.Response:
        """batch/v1 Jobs: propagation by finalizers (22g, 22h, 22i); Orphan by default."""
        from kgahp_sim import jobs

        obj, removed, warnings = jobs.delete(
            self.store, route.namespace, route.name, options["propagationPolicy"],
            uid_precondition=(options.get("preconditions") or {}).get("uid"),
            dry_run=options.get("dryRun") == ["All"])
        if removed:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": route.name, "group": "batch", "kind": "jobs",
                                  "uid": obj["metadata"].get("uid")}}
            return self._json(status, 200, pretty, warnings)
        return self._json(obj, 200, pretty, warnings)

    async def _delete_collection(self, request: web.Request, route: Route,
                                 pretty: bool) -> web.Response:
        """DELETE on a collection: every selected object, answered with their list."""
        if route.resource == "namespaces":
            raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this "
                                 "method on the requested resource", {})
        options = await self._delete_options(request)
        try:
            by_label = label_matcher(request.query.get("labelSelector", ""))
            by_field = field_matcher(route.resource, request.query.get("fieldSelector", ""))
        except SelectorError as err:
            raise ApiStatusError(400, "BadRequest", str(err)) from err
        deleted = []
        for obj in self.store.scan(route.resource, route.namespace):
            if not (by_label(obj) and by_field(obj)):
                continue
            meta = obj["metadata"]
            gone, _ = self.store.delete(route.resource, meta.get("namespace"), meta["name"],
                                        grace_seconds=options.get("gracePeriodSeconds"),
                                        dry_run=options.get("dryRun") == ["All"])
            deleted.append({k: v for k, v in gone.items() if k not in ("kind", "apiVersion")})
        return self._json({"kind": KIND_OF[route.resource] + "List",
                           "apiVersion": api_version(route.resource),
                           "metadata": {"resourceVersion": str(self.store.rv)},
                           "items": deleted}, 200, pretty)

    async def _patch(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in PATCH_TYPES:
            raise ApiStatusError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
        if ctype == "application/apply-patch+yaml":
            return await self._apply(request, route, pretty)
        raw = await request.read()
        try:
            patch = json.loads(raw)
        except ValueError as exc:
            raise ApiStatusError(400, "BadRequest", f"error decoding patch: {exc}") from exc
        current = self.store.peek(route.resource, route.namespace, route.name)
        if current is None:
            raise not_found(route.resource, route.name)
        try:
            if ctype == "application/json-patch+json":
                patched = json_patch(current, patch)
            elif ctype == "application/merge-patch+json":
                patched = merge_patch(current, patch)
            else:
                patched = strategic_merge_patch(current, patch)
        except PatchError as exc:
            raise ApiStatusError(422, "Invalid", "the server rejected our request due to an "
                                 "error in our request", {}) from exc
        if not isinstance(patched, dict):
            raise ApiStatusError(422, "Invalid", "the server rejected our request due to an "
                                 "error in our request", {})
        expect = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(
            patch, dict) else None
        return self._write(route, current, patched, expect, pretty, request.query)

    async def _apply(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        if not request.query.get("fieldManager"):
            raise validation.options_invalid("PatchOptions", "fieldManager", "FieldValueRequired",
                                             "Required value: is required for apply patch")
        import yaml

        body = yaml.safe_load(await request.read()) or {}
        current = self.store.peek(route.resource, route.namespace, route.name)
        if current is None:
            body.setdefault("metadata", {})["name"] = route.name
            validation.validate_create(route.resource, body)
            created = self.store.create(route.resource, route.namespace, body,
                                        dry_run=request.query.get("dryRun") == "All")
            return self._json(created, 201, pretty)
        patched = merge_patch(current, body)
        return self._write(route, current, patched, None, pretty, request.query)

    async def _put(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        body = await self._body(request, KIND_OF[route.resource])
        current = self.store.peek(route.resource, route.namespace, route.name)
        if current is None:
            raise not_found(route.resource, route.name)
        if not isinstance(body, dict):
            raise ApiStatusError(400, "BadRequest", "the object provided is unrecognized")
        name = (body.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise ApiStatusError(400, "BadRequest",
                                 "the name of the object does not match the name on the URL")
        expect = (body.get("metadata") or {}).get("resourceVersion")
        return self._write(route, current, body, expect, pretty, request.query)

    def _write(self, route: Route, current: dict, new: dict, expect_rv: str | None,
               pretty: bool, query: Any) -> web.Response:
        """Common tail of PATCH and PUT: subresource rules, validation, conflict check."""
        if expect_rv and expect_rv != current["metadata"].get("resourceVersion"):
            raise ApiStatusError(
                409, "Conflict",
                f'Operation cannot be fulfilled on {route.resource} "{route.name}": the object '
                "has been modified; please apply your changes to the latest version and try "
                "again", {"name": route.name, "kind": route.resource})
        new = clone(new)  # type: ignore[assignment]
        if route.resource == "secrets":
            default_secret(new)  # stringData is write-only: folded into data on every write
        if route.subresource == "status":
            status_obj = clone(current)
            assert isinstance(status_obj, dict)
            status_obj["status"] = new.get("status", {})
            keep_qos_class(route.resource, current, status_obj)
            meta = new.get("metadata") or {}
            for key in ("labels", "annotations"):  # the status strategy keeps new metadata
                if key in meta:
                    status_obj["metadata"][key] = meta[key]
                else:
                    status_obj["metadata"].pop(key, None)
            validation.validate_status_update(route.resource, current, status_obj)
            new = status_obj
        else:
            if "status" in current:
                new["status"] = current["status"]
            validation.validate_update(route.resource, current, new)
        warnings = admission.admit_update(self.store, route.resource, route.namespace,
                                          route.subresource, current, new)
        if query.get("dryRun") == "All":
            return self._json(new, 200, pretty, warnings)
        stored = self.store.replace(route.resource, route.namespace, route.name, new)
        return self._json(stored, 200, pretty, warnings)

    async def _binding(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        if request.method != "POST":
            raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this "
                                 "method on the requested resource", {})
        body = await self._body(request, "Binding")
        node = ((body or {}).get("target") or {}).get("name", "")
        pod = self.store.get("pods", route.namespace, route.name)
        if pod["spec"].get("schedulingGates"):   # 24b
            raise ApiStatusError(
                409, "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{route.name}": pod '
                f'{route.name} has non-empty .spec.schedulingGates',
                {"name": route.name, "kind": "pods/binding"})
        if pod["spec"].get("nodeName"):
            raise ApiStatusError(
                409, "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{route.name}": pod '
                f'{route.name} is already assigned to node "{pod["spec"]["nodeName"]}"',
                {"name": route.name, "kind": "pods/binding"})

        def bind(obj: dict) -> None:
            obj["spec"]["nodeName"] = node
            conditions = obj.setdefault("status", {}).setdefault("conditions", [])
            conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True",
                               "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})

        self.store.update("pods", route.namespace, route.name, bind, copy=False)
        return self._json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Success", "code": 201}, 201, pretty)

    async def _eviction(self, request: web.Request, route: Route, pretty: bool) -> web.Response:
        """POST pods/NAME/eviction (27a, 27a2, 27b, 27c, 27f, 27g): the apiserver first marks the
        pod DisruptionTarget=True (EvictionByEvictionAPI), then deletes it as a default DELETE
        does (graceful for a bound pod, at once for an unbound one). No PodDisruptionBudgets
        here: every eviction is allowed."""
        if request.method != "POST":
            raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this "
                                 "method on the requested resource", {})
        body = await self._body(request, "Eviction")
        named = ((body or {}).get("metadata") or {}).get("name") if isinstance(body, dict) \
            else None
        self.store.get("pods", route.namespace, route.name)   # 404 when missing (27c)
        if named and named != route.name:
            raise ApiStatusError(400, "BadRequest",
                                 "name in URL does not match name in Eviction object")
        grace = ((body or {}).get("deleteOptions") or {}).get("gracePeriodSeconds") \
            if isinstance(body, dict) else None

        def mark(obj: dict) -> None:
            conditions = obj.setdefault("status", {}).setdefault("conditions", [])
            conditions[:] = [c for c in conditions if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True",
                               "lastProbeTime": None, "lastTransitionTime": now_rfc3339(),
                               "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting"})

        self.store.update("pods", route.namespace, route.name, mark, copy=False)
        self.store.delete("pods", route.namespace, route.name,
                          grace_seconds=int(grace) if grace is not None else None)
        return self._json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Success", "code": 201}, 201, pretty)


async def _strip_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """kube-apiserver sends no Server header; some clients log it."""
    response.headers.pop("Server", None)
    response.headers["Audit-Id"] = new_uid()

