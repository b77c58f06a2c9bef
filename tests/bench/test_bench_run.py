"""The one benchmark command, end to end at a tiny scale: it must run, and what it measures must
hold (three API requests per job life, none per status, the limiter honoured, full recovery)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import procstat
from kgahp.config.settings import ServerSettings
from kgahp_sim.api import VERSION_INFO

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_tiny_benchmark_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--jobs", "60", "--life-jobs", "6",
         "--rate-jobs", "60", "--retry-jobs", "40", "--baseline-jobs", "2", "--paced-samples",
         "5", "--scale", "0", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=170, check=False)
    # 1 = a target missed (timing on a busy test machine); anything else is a crash
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert json.loads(proc.stdout) == results
    try:
        import matplotlib  # noqa: F401  (a [bench] extra, absent in the test venv)
    except ImportError:
        assert not (out / "status_rss.png").exists()
    else:
        assert (out / "status_rss.png").stat().st_size > 1000
    assert "tracked" in (out / "results.txt").read_text()

    life = results["job_life"]
    assert life["pods_left"] == 0
    assert life["counted_by"] == "sim"
    # one create, one patch (the tracking finalizer, once the result is recorded), one delete
    assert life["requests"] == {"create/pods/": 6, "patch/pods/": 6, "delete/pods/": 6}
    # what kgahp's own request log counted is what the server counted
    assert life["client_requests"] == life["requests"]
    assert results["meta"]["cluster"] == "sim"
    assert results["meta"]["transport"] == "http"
    assert results["meta"]["server_version"] == VERSION_INFO["gitVersion"]   # the sim's /version

    scale = results["scale"]
    assert [s["tracked"] for s in scale["steps"]] == [60]
    step = scale["steps"][0]
    assert step["burst"]["n"] == 60 and step["isolated"]["n"] == 60
    assert step["burst"]["api_requests_per_status"] == 0
    assert 0 < step["isolated"]["p50_ms"] <= step["isolated"]["p99_ms"]
    assert 20 < step["peak_rss_mb"] < 1000
    assert scale["submit"]["api_requests_per_submit"] >= 1
    rec = scale["recovery"]
    assert rec["unanswered"] == 0 and rec["jobs"] == 60 and rec["seconds"] > 0

    assert scale["submit"]["client_api_requests_per_submit"] == \
        scale["submit"]["api_requests_per_submit"]
    assert rec["client_api_requests"] == rec["api_requests"]

    lim = results["limit"]
    # the same concurrency as kgahp: its KGAHP_WORKERS default
    assert lim["jobs"] == 60 and lim["threads"] == ServerSettings().workers == 50
    assert lim["api_requests_per_submit"] == 1 and lim["server_requests_per_submit"] == 1
    assert lim["cpu_ms_per_submit"] > 0 and lim["sim_cpu_ms_per_submit"] > 0

    stages = results["stages"]   # the serial floor: every step timed, its pods made and gone
    assert stages["count"] == 60 and stages["pods"] == 120
    assert set(stages["steps"]) == {"parse", "policy", "render", "store", "create", "bare_post"}
    assert all(step["mean_ms"] > 0 for step in stages["steps"].values())
    assert stages["submit_ms"] > stages["steps"]["create"]["mean_ms"]
    assert "submit steps one at a time" in (out / "results.txt").read_text()

    rate = results["rate_limit"]
    assert rate["requests"] >= 60
    # The server's counter is process-wide: a request still in flight from the previous phase's
    # GAHP, or its exit clean-up, can land inside this window on a loaded machine (seen once:
    # 60 sent, 61 counted). kgahp's own log never shows fewer requests than the server saw.
    assert rate["requests"] <= rate["server_requests"] <= rate["requests"] + 2
    assert rate["max_in_1s"] <= rate["allowed_in_1s"] + 1    # kgahp's own send times
    assert rate["seconds"] >= (rate["requests"] - rate["burst"]) / rate["qps"] * 0.8

    retry = results["retry_after"]
    assert retry["measured"] and retry["submits_ok"] == 40
    assert retry["answered_429"] >= 16                       # every worker was refused
    assert retry["min_wait_after_429"] >= retry["retry_after"] - 0.05
    assert retry["creates_per_second_during"] <= retry["allowed_per_second_during"] + 1

    if shutil.which("kubectl"):
        base = results["baseline"]
        assert base["jobs"] == 2 and base["status_cpu_ms"] > 0
    head = results["headline"]
    assert head["tracked_jobs"] == 60
    assert head["submit_rate_vs_limit"] == pytest.approx(
        scale["submit"]["per_second"] / lim["per_second"])
    assert head["cpu_per_submit_vs_limit"] == pytest.approx(
        scale["submit"]["cpu_ms_per_submit"] / lim["cpu_ms_per_submit"])
    assert set(results["targets_met"]) == {"status_p99_ms", "api_requests_per_status",
                                           "submits_per_second", "peak_rss_mb",
                                           "recovery_seconds", "submit_rate_vs_limit",
                                           "cpu_per_submit_vs_limit", "rate_limit_honoured",
                                           "retry_after_honoured"}
    assert results["targets_met"]["rate_limit_honoured"]
    assert results["targets_met"]["retry_after_honoured"]
    text = (out / "results.txt").read_text()
    assert "kgahp/limit" in text
    assert f"{head['submit_rate_vs_limit']:.2f}" in text


@pytest.mark.timeout(120)
def test_submit_against_the_limit_over_https(tmp_path: Path) -> None:
    """--sim-tls: the simulator serves https with its own CA, as a real API server does, and
    both kgahp and the limit create their pods through it."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make the simulator's certificate")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--phases", "limit,scale",
         "--jobs", "30", "--paced-samples", "3", "--sim-tls", "--workers", "6", "--no-chart",
         "--out", str(out)],
        capture_output=True, text=True, timeout=110, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["transport"] == "https"
    assert results["limit"]["jobs"] == 30 and results["limit"]["retries"] == 0
    # --workers: kgahp's KGAHP_WORKERS and, the same concurrency, the limit's threads
    assert results["meta"]["kgahp_workers"] == 6 and results["limit"]["threads"] == 6
    assert results["scale"]["submit"]["api_requests_per_submit"] >= 1
    assert results["scale"]["recovery"]["unanswered"] == 0
    assert "https://127.0.0.1" in (out / "results.txt").read_text()
    # where kgahp's CPU per submit went, by kind of thread (Linux /proc)
    if sys.platform.startswith("linux"):
        by_thread = results["scale"]["submit"]["by_thread"]
        # the scheduler's nanosecond count: 30 submits show, far below a clock tick
        assert by_thread["gahp-submit"]["cpu_ms_per_submit"] > 0
        assert by_thread["gahp-submit"]["switches_per_submit"] > 0
        assert by_thread["gahp-submit"]["threads"] == 6
        assert all(f["cpu_ms_per_submit"] >= 0 for f in by_thread.values())
        assert "main (protocol)" in by_thread
        shares = sum(f["cpu_ms_per_submit"] for f in by_thread.values())
        # the process's total is counted in clock ticks: over 30 submits, +-2 ticks a window
        tick_ms = 1000 / procstat.CLOCK_TICKS
        assert shares <= results["scale"]["submit"]["cpu_ms_per_submit"] + 2 * tick_ms / 30
        assert "kgahp CPU per submit by thread" in (out / "results.txt").read_text()
    # the gridmanager stand-in's wait for each S, which paces a burst, and its own CPU
    submit = results["scale"]["submit"]
    assert submit["immediate"]["n"] == 30
    assert 0 < submit["immediate"]["p50_ms"] <= submit["immediate"]["p99_ms"]
    assert 0 < submit["immediate_share"] < 1
    assert submit["driver_cpu_ms_per_submit"] > 0
    assert "wait for each submit's S" in (out / "results.txt").read_text()


@pytest.mark.timeout(240)
def test_scale_tiers_tiny(tmp_path: Path) -> None:
    """Two tiny tiers: seeded pods and store, kgahp started on them, killed, recovered; every
    job answered right, no API request per status, a recovery that is the paged lists plus one
    watch per namespace, and ended pods answered COMPLETED."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--phases", "tiers", "--scale",
         "90,1200", "--namespaces", "2", "--events", "80", "--events-window", "2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=230, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"meta", "tiers"} and "scale" not in results
    rows = results["tiers"]["tiers"]
    assert [r["tracked"] for r in rows] == [90, 1200]
    for row in rows:
        assert row["namespaces"] == 2 and row["loaded_by"].startswith("seeded")
        assert row["burst"]["api_requests_per_status"] == 0
        assert 0 < row["isolated"]["p50_ms"] <= row["isolated"]["p99_ms"]
        assert 20 < row["rss_mb"] < 2000
        for rec in (row["first_start"], row["recovery"]):
            assert rec["unanswered"] == 0 and rec["wrong_answers"] == 0
            assert rec["lists_paged"]
            assert rec["api_requests_by_kind"] == {"list/pods/": rec["list_pages"],
                                                   "watch/pods/": 2}
            assert rec["api_requests"] == rec["client_api_requests"] == rec["expected_requests"]
        events = row["events"]
        assert events["pods"] == 80 and events["all_completed_after"] >= 1.5
        assert events["lag"]["n"] == 80
    # 1,200 jobs over 2 namespaces: 600 each, two pages of 500 each
    assert rows[1]["recovery"]["list_pages"] == 4 and rows[1]["recovery"]["continue_pages"] == 2
    text = (out / "results.txt").read_text()
    assert "scale tiers" in text and "1,200" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (out / "scale_tiers.png").exists()
    else:
        assert (out / "scale_tiers.png").stat().st_size > 1000
