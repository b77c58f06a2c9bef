"""A kgahp protocol server over stdin/stdout with a slow fake backend, for subprocess tests.

usage: python protocol_slow_gahp.py [--min-delay S] [--max-delay S] [--workers N] [--noisy]
A submit whose ad contains HANG sleeps a minute (to test that exit does not wait for it).
--noisy makes every handler print(), warn and write to fd 1 directly: none of it may reach the
protocol stream.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol_fakes import FakeHandlers

from kgahp.protocol import claim_stdout, serve


class SlowHandlers(FakeHandlers):
    def __init__(self, delay: tuple[float, float], noisy: bool) -> None:
        super().__init__(delay)
        self.noisy = noisy

    def _pause(self) -> None:
        if self.noisy:
            print("stray print from a handler")
            warnings.warn("stray warning from a handler", stacklevel=1)
            os.write(1, b"stray C-level write to fd 1\n")
        super()._pause()

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        if "HANG" in ad_text:
            time.sleep(60)
        return super().submit(ad_text)


def main() -> int:
    out = claim_stdout()
    parser = argparse.ArgumentParser()
    parser.add_argument("--min-delay", type=float, default=0.2)
    parser.add_argument("--max-delay", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--noisy", action="store_true")
    opts = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    handlers = SlowHandlers((opts.min_delay, opts.max_delay), opts.noisy)
    return serve(handlers, workers=opts.workers, max_queued=1000, stdin=sys.stdin.buffer,
                 out=out, version="0.1.0")


if __name__ == "__main__":
    sys.exit(main())
