"""The Handlers the GAHP server starts with, before the real service exists."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Optional

from kgahp.config import Settings
from kgahp.errors import KgahpError

if TYPE_CHECKING:
    from kgahp.service import Service

log = logging.getLogger(__name__)


class LazyService:
    """The Handlers the server starts with: the banner must go out before anything slow (the
    kubernetes client import and kubeconfig loading take a while), and a broken configuration
    must become a clear error on every request (ping → resource down with the reason) rather
    than a GAHP that dies at start, which the gridmanager reports far less helpfully."""

    def __init__(self, settings: Settings, error: Optional[str] = None) -> None:
        self.settings = settings
        self._service: Optional[Service] = None
        self._error: Optional[str] = error
        self._ready = threading.Event()
        if error:
            self._ready.set()
        else:
            threading.Thread(target=self._build, name="startup", daemon=True).start()

    def _build(self) -> None:
        try:
            from kgahp.app import build_service  # heavy imports: after the banner

            self._service = build_service(self.settings)
        except KgahpError as exc:
            self._error = str(exc)
            log.error("kgahp cannot work: %s", exc)
        except Exception as exc:  # never die at start; say why on every request instead
            log.exception("kgahp failed to start")
            self._error = f"kgahp failed to start: {exc}"
        finally:
            self._ready.set()

    def service(self) -> Optional[Service]:
        self._ready.wait(120)
        return self._service

    def _unavailable(self) -> str:
        return self._error or "kgahp is still starting"

    def ping(self, batch_type: str) -> tuple[int, str]:
        svc = self.service()
        return svc.ping(batch_type) if svc else (1, self._unavailable())

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        svc = self.service()
        return svc.submit(ad_text) if svc else (1, self._unavailable(), None)

    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
        svc = self.service()
        return svc.status(job_id) if svc else (1, self._unavailable(), 0, None)

    def cancel(self, job_id: str) -> tuple[int, str]:
        svc = self.service()
        return svc.cancel(job_id) if svc else (1, self._unavailable())

    def refresh_proxy(self, job_id: str, proxy_path: str) -> tuple[int, str]:
        svc = self.service()
        return svc.refresh_proxy(job_id, proxy_path) if svc else (1, self._unavailable())

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
