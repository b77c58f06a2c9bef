"""How much the protocol layer itself costs per request (instant backend)."""

from __future__ import annotations

import io
import time
from typing import Optional

from protocol_fakes import FakeHandlers, Session, output_lines

from kgahp.protocol.escaping import split_line
from kgahp.protocol.server import serve

REQUESTS = 10_000


class Instant(FakeHandlers):
    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
        return 0, "", 2, '[ BatchJobId = "kg-1"; JobStatus = 2; WorkerNode = "node17" ]'


class _Sink(io.BytesIO):
    def close(self) -> None:
        pass


def test_throughput_of_status_requests() -> None:
    """Stream 10,000 status requests (RESULTS every 50) and count every result."""
    lines = [b"ASYNC_MODE_ON\r\n"]
    for reqid in range(2, REQUESTS + 2):
        lines.append(b"BLAH_JOB_STATUS %d kubernetes/default/kg-%d\r\n" % (reqid, reqid))
        if reqid % 50 == 0:
            lines.append(b"RESULTS\r\n")
    out = _Sink()
    start = time.perf_counter()
    rc = serve(Instant(), workers=4, max_queued=REQUESTS, stdin=io.BytesIO(b"".join(lines)),
               out=out, version="0.1.0")
    elapsed = time.perf_counter() - start
    assert rc == 0
    replies = [split_line(line) for line in output_lines(out.getvalue())[1:]]
    assert sum(1 for r in replies if r == ["S"]) == REQUESTS
    results = [r for r in replies if r[0].isdigit()]
    assert all(len(r) == 5 and r[3] == "2" for r in results)
    per_request_us = elapsed / REQUESTS * 1e6
    print(f"\nstreamed: {per_request_us:.0f} us per status request "
          f"({len(results)} results drained in-stream)")
    assert per_request_us < 2000


def test_round_trip_latency_like_the_gridmanager() -> None:
    """One request at a time, reply awaited before the next (the gridmanager's pattern)."""
    session = Session(Instant(), workers=4)
    count = 2000
    start = time.perf_counter()
    for reqid in range(2, count + 2):
        assert session.command(b"BLAH_JOB_STATUS %d kubernetes/default/kg-1" % reqid) == ["S"]
        if reqid % 50 == 0:
            session.results()
    elapsed = time.perf_counter() - start
    assert session.close() == 0
    per_request_us = elapsed / count * 1e6
    print(f"\nround trip: {per_request_us:.0f} us per status request over pipes")
    assert per_request_us < 5000
