"""One watch request: replay from a resourceVersion, then live events, bookmarks and timeout.

Each event is serialised once (WatchEvent.line) however many watchers receive it; events that
arrive together are written in one chunk.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from kgahp_sim import validation
from kgahp_sim.defaulting import KIND_OF
from kgahp_sim.faults import FaultRule
from kgahp_sim.selectors import SelectorError, field_matcher, label_matcher
from kgahp_sim.store import CLUSTER_SCOPED, ApiStatusError, Store, WatchEvent
from kgahp_sim.wire import BASE_HEADERS, Route, dump, int_param, truthy


def bookmark(resource: str, rv: int) -> dict:
    """A BOOKMARK object: an empty object of the kind carrying only the version (07)."""
    obj: dict = {"kind": KIND_OF.get(resource, ""), "apiVersion": "v1",
                 "metadata": {"resourceVersion": str(rv), "creationTimestamp": None}}
    if resource == "pods":
        obj["spec"] = {"containers": None}
        obj["status"] = {}
    elif resource in ("namespaces", "nodes"):
        obj["spec"] = {}
        obj["status"] = {}
    return obj


class WatchWriter:
    """Writes watch lines, applying a fault rule that cuts the stream after N events."""

    def __init__(self, resp: web.StreamResponse, rule: FaultRule | None) -> None:
        self.resp = resp
        self.remaining = rule.cut_after_events if rule is not None else None
        self.mid_event = bool(rule and rule.cut_mid_event)

    async def send(self, lines: list[bytes]) -> bool:
        """False once the stream has been cut (the caller must stop)."""
        if self.remaining is None:
            await self.resp.write(b"".join(lines))
            return True
        for line in lines:
            if self.remaining <= 0:
                if self.mid_event:
                    await self.resp.write(line[: len(line) // 2])
                return self._cut()
            await self.resp.write(line)
            self.remaining -= 1
        if self.remaining <= 0 and not self.mid_event:
            return self._cut()
        return True

    def _cut(self) -> bool:
        request = self.resp._req
        transport = request.transport if request is not None else None
        if transport is not None:
            transport.abort()
        return False


class WatchStream:
    def __init__(self, store: Store, route: Route, query: object,
                 bookmark_interval: float) -> None:
        get = query.get  # type: ignore[attr-defined]
        rv_raw = get("resourceVersion")
        validation.check_list_options(rv_raw, get("resourceVersionMatch"), watch=True)
        self.start_rv = validation.parse_rv(rv_raw) if rv_raw not in (None, "") else 0
        try:
            self.by_label = label_matcher(get("labelSelector", ""))
            self.by_field = field_matcher(route.resource, get("fieldSelector", ""))
        except SelectorError as bad_selector:
            raise ApiStatusError(400, "BadRequest", str(bad_selector)) from bad_selector
        self.timeout = int_param(query, "timeoutSeconds")
        self.bookmarks = truthy(get("allowWatchBookmarks"))
        self.store = store
        self.resource = route.resource
        self.namespace = None if route.resource in CLUSTER_SCOPED else route.namespace
        self.interval = max(0.01, bookmark_interval)

    def visible(self, obj: dict | None) -> bool:
        return obj is not None and self.by_label(obj) and self.by_field(obj)

    def event_line(self, ev: WatchEvent) -> bytes | None:
        """The line this watcher gets for ev; selector transitions become ADDED/DELETED."""
        if ev.resource != self.resource or (self.namespace is not None
                                            and ev.namespace != self.namespace):
            return None
        now = self.visible(ev.obj)
        if ev.type == "MODIFIED":
            before = self.visible(ev.old) if ev.old is not None else now
            if now and before:
                return ev.line()
            if now:
                return ev.line("ADDED")
            if before:
                return ev.line("DELETED")
            return None
        return ev.line() if now else None

    async def serve(self, request: web.Request, rule: FaultRule | None) -> web.StreamResponse:
        queue = self.store.subscribe()  # before reading history: nothing can fall in between
        resp = web.StreamResponse(status=200, headers=BASE_HEADERS)
        resp.content_type = "application/json"
        resp.enable_chunked_encoding()
        try:
            backlog: list[bytes] = []
            last_rv = self.store.rv
            known_rv = self.start_rv or last_rv  # what the client has been told so far
            if self.start_rv == 0:
                for obj in self.store.scan(self.resource, self.namespace):
                    if self.visible(obj):
                        backlog.append(dump({"type": "ADDED", "object": obj}))
            elif self.start_rv < self.store.compacted_rv:
                oldest = self.store.compacted_rv + 1
                expired = ApiStatusError(410, "Expired",
                                         f"too old resource version: {self.start_rv} ({oldest})")
                await resp.prepare(request)
                await resp.write(dump({"type": "ERROR", "object": expired.status()}))
                await resp.write_eof()
                return resp
            else:
                last_rv = self.start_rv
                for ev in self.store.history_since(self.start_rv):
                    line = self.event_line(ev)
                    if line:
                        backlog.append(line)
                        known_rv = ev.rv
                    last_rv = max(last_rv, ev.rv)
            await resp.prepare(request)
            writer = WatchWriter(resp, rule)
            if backlog and not await writer.send(backlog):
                return resp
            await self._live(queue, writer, last_rv, known_rv)
            await resp.write_eof()
        except ConnectionResetError:
            pass  # the client went away (or a fault cut the stream): nothing to report
        finally:
            self.store.unsubscribe(queue)
        return resp

    async def _live(self, queue: asyncio.Queue[WatchEvent], writer: WatchWriter, last_rv: int,
                    known_rv: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.timeout if self.timeout else None
        next_bookmark = started + self.interval
        if deadline is not None and self.timeout and self.timeout > 2:
            next_bookmark = min(next_bookmark, deadline - 2.0)  # as the watch cache does
        bookmark_rv = known_rv
        while True:
            now = loop.time()
            if deadline is not None and now >= deadline:
                return
            wait = (deadline - now) if deadline is not None else None
            if self.bookmarks:
                until = next_bookmark - now
                wait = min(wait, until) if wait is not None else until
            try:
                ev = await asyncio.wait_for(queue.get(),
                                            timeout=max(0.0, wait) if wait is not None else None)
            except asyncio.TimeoutError:
                now = loop.time()
                if self.bookmarks and now >= next_bookmark:
                    latest = self.store.resource_rv.get(self.resource, 0)
                    if latest > bookmark_rv:  # only when something happened since (07b)
                        bookmark_rv = latest
                        mark = dump({"type": "BOOKMARK",
                                     "object": bookmark(self.resource, latest)})
                        if not await writer.send([mark]):
                            return
                    next_bookmark = now + self.interval
                continue
            batch = [ev]
            while not queue.empty():
                batch.append(queue.get_nowait())
            lines: list[bytes] = []
            for item in batch:
                if item.rv <= last_rv:
                    continue
                last_rv = item.rv
                line = self.event_line(item)
                if line:
                    lines.append(line)
                    bookmark_rv = max(bookmark_rv, item.rv)
            if lines and not await writer.send(lines):
                return

