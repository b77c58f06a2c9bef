"""pods/log: the apiserver's front end (validation, 204, 400s) over the kubelet's log file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from aiohttp import web

from kgahp_sim import validation
from kgahp_sim.store import ApiStatusError, Store, now_rfc3339
from kgahp_sim.wire import BASE_HEADERS, Route, int_param, truthy

LogPath = Callable[[str, str, str], Path]
FOLLOW_POLL = 0.1  # seconds between looks at a followed log file


def container_done(pod: dict, container: str) -> bool:
    status = pod.get("status", {})
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses")
                                                         or []):
        if s.get("name") == container and "terminated" in (s.get("state") or {}):
            return True
    return False


def pick_container(pod: dict, name: str, requested: str) -> str:
    """The container the request means, or the apiserver's 400."""
    containers = [c["name"] for c in pod["spec"].get("containers", [])]
    init = [c["name"] for c in pod["spec"].get("initContainers") or []]
    if not requested:
        if len(containers) != 1:
            raise ApiStatusError(
                400, "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
                + (f" or one of the init containers: [{' '.join(init)}]" if init else ""))
        return containers[0]
    if requested not in containers and requested not in init:
        raise ApiStatusError(400, "BadRequest",
                             f"container {requested} is not valid for pod {name}")
    return requested


def select_lines(data: bytes, tail: int | None, stamp: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    if tail is not None:
        lines = lines[-tail:] if tail else []
    return b"".join(stamp + line for line in lines)


async def serve_log(request: web.Request, store: Store, route: Route,
                    log_path: LogPath | None) -> web.StreamResponse:
    if request.method != "GET":
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this "
                             "method on the requested resource", {})
    query = request.query
    pod = store.get("pods", route.namespace, route.name)
    tail = int_param(query, "tailLines")
    limit = int_param(query, "limitBytes")
    validation.check_log_options(route.name, tail, limit)
    container = pick_container(pod, route.name, query.get("container", ""))
    if not pod["spec"].get("nodeName"):
        return web.Response(status=204, headers=BASE_HEADERS)  # no kubelet to ask yet (11h)
    path = log_path(route.namespace or "", route.name, container) if log_path else None
    statuses = (pod.get("status", {}).get("containerStatuses") or []) + (
        pod.get("status", {}).get("initContainerStatuses") or [])
    state: dict = next((s.get("state", {}) for s in statuses if s.get("name") == container), {})
    if "waiting" in state and (path is None or not path.exists()):
        reason = state["waiting"].get("reason", "ContainerCreating")
        raise ApiStatusError(  # the real kubelet's answer (note of recording 11i)
            400, "BadRequest",
            f'container "{container}" in pod "{route.name}" is waiting to start: {reason}')
    resp = web.StreamResponse(status=200, headers=BASE_HEADERS)
    resp.content_type = "text/plain"
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    stamp = b""
    if truthy(query.get("timestamps")):
        started = state.get("running") or state.get("terminated") or {}
        stamp = ((started.get("startedAt") or now_rfc3339()).replace("Z", ".000000000Z")
                 + " ").encode()
    data = path.read_bytes() if path is not None and path.exists() else b""
    follow = truthy(query.get("follow")) and path is not None
    complete = data if not follow else data[: data.rfind(b"\n") + 1]
    out = select_lines(complete, tail, stamp)
    if limit is not None:
        out = out[:limit]
    await resp.write(out)
    sent = len(out)
    if follow and path is not None:
        offset = len(complete)
        while limit is None or sent < limit:
            await asyncio.sleep(FOLLOW_POLL)
            current = store.peek("pods", route.namespace, route.name)
            done = current is None or container_done(current, container)
            fresh = b""
            if path.exists():
                with path.open("rb") as fh:
                    fh.seek(offset)
                    fresh = fh.read()
            if not done:  # only whole lines while the container may still write
                fresh = fresh[: fresh.rfind(b"\n") + 1]
            offset += len(fresh)
            chunk = select_lines(fresh, None, stamp)
            if limit is not None:
                chunk = chunk[: limit - sent]
            if chunk:
                await resp.write(chunk)
                sent += len(chunk)
            if done:
                break
    await resp.write_eof()
    return resp
