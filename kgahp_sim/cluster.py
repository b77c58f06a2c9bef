"""SimCluster: the whole simulated cluster (API + controllers) on a background event loop."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from aiohttp import web

from kgahp_sim import controllers
from kgahp_sim.api import SimApi
from kgahp_sim.faults import Faults
from kgahp_sim.nodes import pod_log_path
from kgahp_sim.simconfig import SimConfig
from kgahp_sim.stats import RequestStats
from kgahp_sim.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class SimCluster:
    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                 *, future_rv_wait: float = 3.0, anonymous_admin: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config or SimConfig()
        self.ssl_context = ssl_context   # serve https (in-cluster clients insist on it)
        self.host = host
        self.port = port
        self.future_rv_wait = future_rv_wait
        self.anonymous_admin = anonymous_admin
        self.stats = RequestStats()
        self.faults = Faults()
        self.store = Store(self.config.history_window)
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._own_workdir = False

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self) -> SimCluster:
        """Serve the API and run the controllers in a background thread; return when ready."""
        if not self.config.workdir:
            self.config.workdir = tempfile.mkdtemp(prefix="kgahp-sim-")
            self._own_workdir = True
        Path(self.config.workdir).mkdir(parents=True, exist_ok=True)
        ready: Future[None] = Future()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # report start-up failures to the caller
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="kgahp-sim", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    async def _serve(self) -> None:
        def log_path(ns: str, pod: str, container: str) -> Path:
            return pod_log_path(self.config, ns, pod, container)
        api = SimApi(self.store, self.config, stats=self.stats, faults=self.faults,
                     future_rv_wait=self.future_rv_wait, log_path=log_path,
                     anonymous_admin=self.anonymous_admin)
        # handler_cancellation: a watch whose client went away stops (and unsubscribes) at once
        # instead of filtering events for nobody; shutdown_timeout: stop() does not wait for
        # open watches to end on their own.
        self._runner = web.AppRunner(api.app(), access_log=None, handle_signals=False,
                                     handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024,
                           ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        api.address = f"{self.host}:{self.port}"
        self._tasks = list(await controllers.start(self.store, self.config))

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def shutdown() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()
            # Whatever else is still pending (pod workers, watch handlers) must end here, on
            # its own loop: a coroutine left for the garbage collector runs its cleanup on
            # another thread at a random moment, which breaks CPython 3.11's AST code.
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)
            if not loop.is_running():
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
            self._loop = None
            if self._own_workdir:
                shutil.rmtree(self.config.workdir, ignore_errors=True)

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- access --------------------------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run fn on the sim's loop thread (where the store lives) and return its result."""
        if self._loop is None:
            return fn()

        async def invoke() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    def kueue_preempt(self, namespace: str, name: str) -> None:
        """The Kueue stand-in preempts this admitted pod (TerminationTarget, then DELETE)."""
        from kgahp_sim import kueue

        self.call(lambda: kueue.preempt(self.store, namespace, name))

    def kueue_preempt_job(self, namespace: str, name: str) -> None:
        """The Kueue stand-in evicts this admitted Job (suspends it; readmitted later)."""
        from kgahp_sim import kueue

        self.call(lambda: kueue.preempt_job(self.store, namespace, name))

    def issue_token(self, ttl: float | None = None) -> str:
        """A new admin bearer token that the API accepts for `ttl` seconds (None: always)."""
        from kgahp_sim import tokens

        return self.call(lambda: tokens.issue(self.config, ttl))

    def compact(self) -> None:
        """Force 410 Gone for any watch or list from an older resourceVersion."""
        self.call(self.store.compact)

    def token(self, restricted: bool = False) -> str:
        return self.config.restricted_token if restricted else self.config.token

    def kubeconfig_dict(self, *, restricted: bool = False, namespace: str = "default") -> dict:
        user = "sim-user" if restricted else "sim-admin"
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "kgahp-sim", "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": self.token(restricted)}}],
            "contexts": [{"name": "kgahp-sim", "context": {
                "cluster": "kgahp-sim", "user": user, "namespace": namespace}}],
            "current-context": "kgahp-sim",
        }

    def write_kubeconfig(self, path: str, *, restricted: bool = False,
                         namespace: str = "default") -> str:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig_dict(restricted=restricted,
                                                              namespace=namespace)))
        target.chmod(0o600)
        return str(target)

    def api_client(self, *, restricted: bool = False) -> Any:
        """A kubernetes.client.ApiClient for this cluster (admin token unless restricted)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"authorization": self.token(restricted)}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)
