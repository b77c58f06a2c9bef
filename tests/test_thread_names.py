"""kgahp's threads carry their names where the operating system shows them (top -H, ps -L)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from kgahp.threads import name_os_thread, start_daemon

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread names are read from Linux's /proc")


def _os_name(thread: threading.Thread) -> str:
    return Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()


def test_a_started_thread_has_its_name_for_the_os_too() -> None:
    named, release = threading.Event(), threading.Event()
    thread = start_daemon(lambda: (named.set(), release.wait(5)), "gahp-submit-3")
    try:
        assert named.wait(5)
        assert thread.name == "gahp-submit-3" and thread.daemon
        assert _os_name(thread) == "gahp-submit-3"
    finally:
        release.set()
        thread.join(5)


def test_the_target_gets_its_arguments_and_a_long_name_is_cut_to_15_bytes() -> None:
    got: list[str] = []
    seen = threading.Event()

    def record(namespace: str) -> None:
        got.append(namespace)
        got.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())
        seen.set()

    start_daemon(record, "watch-a-very-long-namespace-name", ("osg",)).join(5)
    assert seen.is_set()
    assert got == ["osg", "watch-a-very-lo"]       # Linux keeps 15 bytes of a thread's name


def test_naming_the_calling_thread_changes_only_that_thread() -> None:
    main_before = _os_name(threading.main_thread())
    named, done = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=lambda: (name_os_thread("tidy-0"), named.set(), done.wait(5)))
    thread.start()
    try:
        assert named.wait(5)
        assert _os_name(thread) == "tidy-0"
        assert _os_name(threading.main_thread()) == main_before
    finally:
        done.set()
        thread.join(5)
