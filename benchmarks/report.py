"""Turning the results into a terminal table, a JSON file and a PNG chart."""

from __future__ import annotations

import json
import math
from typing import Any

TARGETS = {
    "status_p99_ms": 2.0,            # at 10,000 tracked jobs, isolated
    "api_requests_per_status": 0.0,
    "submits_per_second": 200.0,
    "peak_rss_mb": 250.0,
    "recovery_seconds": 10.0,
}


# Issue 16's scale targets, checked at the tiers of these sizes when they ran:
# tracked jobs -> (status p99 ms, recovery s, RSS MB).
TIER_TARGETS = {10_000: (1.0, 3.0, 150.0), 100_000: (2.0, 20.0, 600.0)}

LIMIT_TARGETS = {
    "submit_rate_vs_limit": 0.9,     # kgahp's submits/s over the bare client's, at least
    "cpu_per_submit_vs_limit": 1.3,  # kgahp's client CPU per pod over the bare client's, at most
}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def _pct(fraction: Any) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.0f}%"


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets and the README talk about, flat (only of the phases that ran)."""
    out: dict[str, Any] = {}
    scale = results.get("scale")
    if scale:
        last = scale["steps"][-1]
        out.update({
            "tracked_jobs": last["tracked"],
            "submits_per_second": scale["submit"]["per_second"],
            "cpu_ms_per_submit": scale["submit"]["cpu_ms_per_submit"],
            "api_requests_per_submit": scale["submit"]["api_requests_per_submit"],
            "status_p50_ms": last["isolated"]["p50_ms"],
            "status_p99_ms": last["isolated"]["p99_ms"],
            "status_immediate_p99_ms": last["isolated"]["immediate"]["p99_ms"],
            "paced_status_p99_ms": scale["paced"]["p99_ms"],
            "burst_status_p50_ms": last["burst"]["p50_ms"],
            "burst_status_p99_ms": last["burst"]["p99_ms"],
            "burst_statuses_per_second": last["burst"]["per_second"],
            "cpu_ms_per_status": last["burst"]["cpu_ms_per_status"],
            "api_requests_per_status": last["burst"]["api_requests_per_status"],
            "peak_rss_mb": last["peak_rss_mb"],
            "recovery_seconds": scale["recovery"]["seconds"],
        })
        for step in scale["steps"]:
            if step["tracked"] == 1000:
                out["status_p50_ms_at_1000"] = step["isolated"]["p50_ms"]
                out["status_p99_ms_at_1000"] = step["isolated"]["p99_ms"]
    if results.get("job_life"):
        out["api_requests_per_job_life"] = results["job_life"]["requests_per_job"]
    lim = results.get("limit")
    if lim and scale:
        out["limit_submits_per_second"] = lim["per_second"]
        out["limit_cpu_ms_per_submit"] = lim["cpu_ms_per_submit"]
        out["submit_rate_vs_limit"] = _safe_ratio(out["submits_per_second"], lim["per_second"])
        out["cpu_per_submit_vs_limit"] = _safe_ratio(out["cpu_ms_per_submit"],
                                                     lim["cpu_ms_per_submit"])
    for row in (results.get("tiers") or {}).get("tiers") or []:
        n = row["tracked"]
        if n in TIER_TARGETS:
            rec = row["recovery"]
            out[f"tier_{n}_status_p99_ms"] = row["isolated"]["p99_ms"]
            out[f"tier_{n}_api_requests_per_status"] = row["burst"]["api_requests_per_status"]
            out[f"tier_{n}_recovery_seconds"] = rec["sample_right_seconds"]
            out[f"tier_{n}_recovery_requests"] = rec["api_requests"]
            out[f"tier_{n}_recovery_requests_expected"] = rec["expected_requests"]
            out[f"tier_{n}_recovery_wrong_answers"] = rec["wrong_answers"] + rec["unanswered"]
            out[f"tier_{n}_rss_mb"] = row["rss_mb"]
    rate = results.get("rate_limit")
    if rate:
        out["rate_limit_max_in_1s"] = rate["max_in_1s"]
        out["rate_limit_allowed_in_1s"] = rate["allowed_in_1s"]
    retry = results.get("retry_after") or {}
    if retry.get("measured"):
        out["min_wait_after_429"] = retry["min_wait_after_429"]
        out["retry_after_seconds"] = retry["retry_after"]
    return out


def verdicts(head: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    if "tracked_jobs" in head:
        out.update({
            "status_p99_ms": head["status_p99_ms"] <= TARGETS["status_p99_ms"],
            "api_requests_per_status": head["api_requests_per_status"] == 0,
            "submits_per_second": head["submits_per_second"] >= TARGETS["submits_per_second"],
            "peak_rss_mb": head["peak_rss_mb"] <= TARGETS["peak_rss_mb"],
            "recovery_seconds": head["recovery_seconds"] <= TARGETS["recovery_seconds"],
        })
    if "submit_rate_vs_limit" in head:
        out["submit_rate_vs_limit"] = (head["submit_rate_vs_limit"]
                                       >= LIMIT_TARGETS["submit_rate_vs_limit"])
        out["cpu_per_submit_vs_limit"] = (head["cpu_per_submit_vs_limit"]
                                          <= LIMIT_TARGETS["cpu_per_submit_vs_limit"])
    if "rate_limit_max_in_1s" in head:
        # one request of slack: the log's send time is taken a moment after the token
        out["rate_limit_honoured"] = (head["rate_limit_max_in_1s"]
                                      <= head["rate_limit_allowed_in_1s"] + 1)
    if head.get("min_wait_after_429") is not None:
        # the log's timestamps are taken around urlopen; 50 ms of slack for thread wake-ups
        out["retry_after_honoured"] = (head["min_wait_after_429"]
                                       >= head["retry_after_seconds"] - 0.05)
    for n, (p99, recovery, rss) in TIER_TARGETS.items():
        if f"tier_{n}_rss_mb" not in head:
            continue
        out[f"tier_{n}_status_p99_ms"] = head[f"tier_{n}_status_p99_ms"] <= p99
        out[f"tier_{n}_api_requests_per_status"] = \
            head[f"tier_{n}_api_requests_per_status"] == 0
        out[f"tier_{n}_recovery_seconds"] = (head[f"tier_{n}_recovery_seconds"] <= recovery
                                             and head[f"tier_{n}_recovery_wrong_answers"] == 0)
        out[f"tier_{n}_recovery_requests"] = (head[f"tier_{n}_recovery_requests"]
                                              <= head[f"tier_{n}_recovery_requests_expected"])
        out[f"tier_{n}_rss_mb"] = head[f"tier_{n}_rss_mb"] <= rss
    return out


def limit_table(results: dict[str, Any]) -> list[str]:
    """kgahp and the bare client side by side, with kgahp / limit."""
    lim = results.get("limit")
    if not lim:
        return ["limit: not measured (--limit-jobs 0 or phase not chosen)"]
    sub = results["scale"]["submit"]
    head = headline(results)
    ok = verdicts(head)
    mark = {True: "ok", False: "MISSED"}
    rows = [
        f"submit vs the limit (a bare persistent client, raw JSON, {lim['threads']} threads; "
        f"same server, same run):",
        f"  {'':<26} {'kgahp':>10} {'limit':>10} {'kgahp/limit':>12}  target",
        f"  {'pods per second':<26} {_fmt(sub['per_second'], 1):>10} "
        f"{_fmt(lim['per_second'], 1):>10} {_fmt(head['submit_rate_vs_limit']):>12}  "
        f">= {LIMIT_TARGETS['submit_rate_vs_limit']} [{mark[ok['submit_rate_vs_limit']]}]",
        f"  {'client CPU ms per pod':<26} {_fmt(sub['cpu_ms_per_submit']):>10} "
        f"{_fmt(lim['cpu_ms_per_submit']):>10} {_fmt(head['cpu_per_submit_vs_limit']):>12}  "
        f"<= {LIMIT_TARGETS['cpu_per_submit_vs_limit']} "
        f"[{mark[ok['cpu_per_submit_vs_limit']]}]",
        f"  {'API requests per pod':<26} {_fmt(sub['api_requests_per_submit']):>10} "
        f"{_fmt(lim['api_requests_per_submit']):>10}",
        f"  {'sim CPU ms per pod':<26} {_fmt(sub['sim_cpu_ms_per_submit']):>10} "
        f"{_fmt(lim['sim_cpu_ms_per_submit']):>10}",
        f"  {'pods':<26} {sub['jobs']:>10} {lim['jobs']:>10}",
        f"  {'load average before/after':<26} "
        f"{_fmt(sub['load_average_before'], 1) + '/' + _fmt(sub['load_average_after'], 1):>10} "
        f"{_fmt(lim['load_average_before'], 1) + '/' + _fmt(lim['load_average_after'], 1):>10}",
    ]
    return rows + thread_lines(sub) + handshake_lines(sub) + stages_lines(results)


def thread_lines(sub: dict[str, Any]) -> list[str]:
    """Where kgahp's CPU per submit went, by kind of thread, and how often each slept."""
    by_thread = sub.get("by_thread")
    if not by_thread:
        return []
    rows = ["kgahp CPU per submit by thread (scale phase; switches: times a thread slept on the "
            "GIL, a lock or I/O):"]
    for role, figures in by_thread.items():
        kind = f"{role} x{figures.get('threads', 1)}"
        rows.append(f"  {kind:<26} {_fmt(figures['cpu_ms_per_submit']):>10} ms "
                    f"{_fmt(figures['switches_per_submit'], 1):>8} switches")
    return rows


def handshake_lines(sub: dict[str, Any]) -> list[str]:
    """How long the gridmanager stand-in waited for each submit's `S`. It sends its next
    command only after that (as the gridmanager does), so this wait paces every burst."""
    imm = sub["immediate"]
    return [f"the gridmanager's wait for each submit's S: p50 {_fmt(imm['p50_ms'], 2)} ms, "
            f"p99 {_fmt(imm['p99_ms'], 1)} ms, {_pct(sub['immediate_share'])} of the burst "
            f"(its own CPU: {_fmt(sub['driver_cpu_ms_per_submit'])} ms/submit)"]


STEP_NAMES = {"parse": "parse the ad", "policy": "policy check", "render": "render + verify",
              "store": "store write", "create": "create request", "bare_post": "bare POST"}


def stages_lines(results: dict[str, Any]) -> list[str]:
    """The serial floor: kgahp's submit steps one at a time in one thread, the bare POST beside
    them, and what running among kgahp's other threads adds to the sum."""
    st = results.get("stages")
    if not st:
        return []
    rows = [f"submit steps one at a time, one thread, nothing else running ({st['count']} "
            "submits; CPU ms, mean / median):"]
    for step, figures in st["steps"].items():
        rows.append(f"  {STEP_NAMES.get(step, step):<26} {_fmt(figures['mean_ms']):>10} "
                    f"{_fmt(figures['median_ms']):>10}")
    rows.append(f"  {'a submit, serially':<26} {_fmt(st['submit_ms']):>10}   "
                f"({_fmt(_safe_ratio(st['submit_ms'], st['bare_post_ms']))} x the bare POST)")
    sub = (results.get("scale") or {}).get("submit")
    if sub:
        rows.append(f"  {'in the scale phase':<26} {_fmt(sub['cpu_ms_per_submit']):>10}   "
                    "(+ the watch, reconciles, protocol and logging, among all of kgahp's threads)")
    return rows


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    head = headline(results)
    ok = verdicts(head)
    mark = {True: "ok", False: "MISSED"}
    lines = [f"kgahp benchmark {meta['date']} on {meta['cores']} cores ({meta['cpu_model']}, "
             f"{meta.get('machine', '?')}), Python {meta['python']}; {meta['jobs']} jobs; load "
             f"average {_fmt(meta['load_average_at_start'])} at start, "
             f"{_fmt(meta.get('load_average_at_end', math.nan))} at end",
             f"server: {meta.get('server', 'sim')}, {meta.get('server_version', '?')}; "
             f"namespace {meta.get('namespace', 'default')}; jobs run "
             f"{meta.get('sleep_workload', 'sim.invalid/sleep')}; API requests counted by "
             f"{meta.get('api_requests_counted_by', 'the sim')}"
             + (f"; kgahp {meta['kgahp_version']}" if meta.get("kgahp_version") else "")]
    if results.get("scale"):
        lines += ["", *scale_lines(results, head, ok, mark)]
    if results.get("job_life"):
        life = results["job_life"]
        lines.append(
            f"job life ({life['jobs']} x {life['image']}, polled every 1 s, "
            f"{life['status_queries']} status queries): {_fmt(life['requests_per_job'])} API "
            f"requests/job {life['requests']}")
    if results.get("rate_limit"):
        rate = results["rate_limit"]
        lines.append(
            f"rate limit QPS={rate['qps']} BURST={rate['burst']}: {rate['requests']} requests in "
            f"{_fmt(rate['seconds'], 1)} s, steady {_fmt(rate['achieved_rate'], 1)} req/s after "
            f"the burst, at most {rate['max_in_1s']} in any 1 s (allowed "
            f"{rate['allowed_in_1s']}) [{mark[ok['rate_limit_honoured']]}]")
    if "retry_after" in results:
        lines.append(retry_line(results.get("retry_after"), ok, mark))
    base = results.get("baseline")
    if base:
        lines += [
            f"baseline ({base['tool']}, one process per operation, {base['jobs']} jobs): "
            f"submit {_fmt(base['submit_ms'], 0)} ms wall / {_fmt(base['submit_cpu_ms'], 0)} ms "
            f"CPU, status {_fmt(base['status_ms'], 0)} ms wall / "
            f"{_fmt(base['status_cpu_ms'], 0)} ms CPU",
            f"ratios baseline/kgahp: CPU per submit x{_fmt(base['ratio_cpu_submit'], 0)}, "
            f"CPU per status x{_fmt(base['ratio_cpu_status'], 0)}, status latency "
            f"x{_fmt(base['ratio_status_latency'], 0)}, submit throughput "
            f"x{_fmt(base['ratio_submit_throughput'], 0)}; polling {head['tracked_jobs']} jobs "
            f"at 5 status/s costs the baseline {_fmt(base['cores_at_5_per_s'], 2)} cores, "
            f"kgahp {_fmt(base['kgahp_cores_at_5_per_s'], 4)}",
        ]
    if results.get("tiers"):
        from benchmarks import tiers

        lines += ["", *tiers.table_lines(results["tiers"])]
        for n, (p99, recovery, rss) in TIER_TARGETS.items():
            if f"tier_{n}_rss_mb" in head:
                lines.append(
                    f"targets at {n:,}: status p99 <= {p99:g} ms "
                    f"[{mark[ok[f'tier_{n}_status_p99_ms']]}], 0 API requests per status "
                    f"[{mark[ok[f'tier_{n}_api_requests_per_status']]}], recovery <= "
                    f"{recovery:g} s [{mark[ok[f'tier_{n}_recovery_seconds']]}], recovery "
                    f"requests <= pages + watches [{mark[ok[f'tier_{n}_recovery_requests']]}], "
                    f"RSS <= {rss:g} MB [{mark[ok[f'tier_{n}_rss_mb']]}]")
    return "\n".join(lines)


def scale_lines(results: dict[str, Any], head: dict[str, Any], ok: dict[str, bool],
                mark: dict[bool, str]) -> list[str]:
    """The stepped scale phase: one row per step, the limit, submit, status, RSS, recovery."""
    scale = results["scale"]
    lines = [f"{'tracked':>8} {'subm/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'imm p99':>8} "
             f"{'burst p50':>10} {'burst p99':>10} {'st/s':>7} {'cpu ms/st':>10} "
             f"{'api/st':>7} {'RSS MB':>7}"]
    for s in scale["steps"]:
        iso, burst = s["isolated"], s["burst"]
        lines.append(
            f"{s['tracked']:>8} {_fmt(s['submit']['per_second'], 0):>7} "
            f"{_fmt(iso['p50_ms'], 3):>8} {_fmt(iso['p99_ms'], 3):>8} "
            f"{_fmt(iso['immediate']['p99_ms'], 3):>8} {_fmt(burst['p50_ms']):>10} "
            f"{_fmt(burst['p99_ms']):>10} {_fmt(burst['per_second'], 0):>7} "
            f"{_fmt(burst['cpu_ms_per_status'], 3):>10} "
            f"{_fmt(burst['api_requests_per_status'], 3):>7} {_fmt(s['peak_rss_mb'], 0):>7}")
    sub, rec = scale["submit"], scale["recovery"]
    lines += ["", *limit_table(results)]
    lines += [
        "",
        f"submit: {_fmt(sub['per_second'], 0)} jobs/s until all {sub['jobs']} pods existed "
        f"(QPS=1000 BURST=2000), {_fmt(sub['cpu_ms_per_submit'])} ms kgahp CPU/submit, "
        f"{_fmt(sub['api_requests_per_submit'])} API requests/submit; kgahp busy "
        f"{_pct(sub['gahp_cpu_utilisation'])} of a core"
        + ("" if sub["sim_cpu_utilisation"] is None else
           f", sim {_pct(sub['sim_cpu_utilisation'])}, sim CPU/submit "
           f"{_fmt(sub['sim_cpu_ms_per_submit'])} ms")
        + f", the gridmanager stand-in {_pct(sub['driver_cpu_utilisation'])}"
        + f"; paced by: {sub['bottleneck']}"
        + f" (kgahp alone on one core: {_fmt(sub['one_core_capacity_per_second'], 0)}/s) "
        f"[{mark[ok['submits_per_second']]} >= 200/s]",
        f"status at {head['tracked_jobs']} tracked: p99 {_fmt(head['status_p99_ms'], 3)} ms "
        f"one at a time [{mark[ok['status_p99_ms']]} <= 2 ms], paced 5/s p99 "
        f"{_fmt(head['paced_status_p99_ms'], 3)} ms, "
        f"{_fmt(head['api_requests_per_status'], 3)} API requests/status "
        f"[{mark[ok['api_requests_per_status']]} = 0]",
        f"peak RSS at {head['tracked_jobs']} tracked: {_fmt(head['peak_rss_mb'], 0)} MB "
        f"[{mark[ok['peak_rss_mb']]} <= 250 MB]",
        f"recovery after SIGKILL at {rec['jobs']} (restart with QPS=20 BURST=40): every "
        f"status right after "
        f"{_fmt(rec['seconds'])} s ({rec['rounds']} rounds, {rec['api_requests']} API requests, "
        f"banner {_fmt(rec['banner_seconds'] * 1000, 0)} ms, kgahp CPU "
        f"{_fmt(rec.get('gahp_cpu_seconds'))} s) [{mark[ok['recovery_seconds']]} <= 10 s]",
    ]
    return lines


def retry_line(retry: Any, ok: dict[str, bool], mark: dict[bool, str]) -> str:
    if not retry:
        return "429 Retry-After: not run"
    if not retry.get("measured"):
        return f"429 Retry-After: n/a ({retry.get('why', 'not measured')})"
    verdict = ok.get("retry_after_honoured")
    return (f"429 Retry-After {retry['retry_after']} s on every pod create for "
            f"{_fmt(retry['fault_seconds'], 0)} s (QPS={retry['qps']}): {retry['answered_429']} "
            f"answered 429; after each the same thread waited at least "
            f"{_fmt(retry['min_wait_after_429'])} s "
            f"[{'n/a' if verdict is None else mark[verdict]}]; creates "
            f"{_fmt(retry['creates_per_second_during'], 1)}/s meanwhile (at most "
            f"{_fmt(retry['allowed_per_second_during'], 1)}/s with "
            f"{retry.get('workers', 16)} threads); "
            f"{retry['submits_ok']} of {retry['jobs']} submits succeeded, the last "
            f"{_fmt(retry['seconds_after_fault'], 1)} s after the server accepted again")


def baseline_summary(base: dict[str, Any], head: dict[str, Any], tool: str,
                     jobs: int) -> dict[str, Any]:
    """Per-operation means of the sampled baseline, extrapolated and compared with kgahp."""
    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    submit_s, submit_cpu = mean(base["submit"].wall), mean(base["submit"].cpu)
    status_s, status_cpu = mean(base["status"].wall), mean(base["status"].cpu)
    ours_submit_cpu = head["cpu_ms_per_submit"] / 1000
    ours_status_cpu = head["cpu_ms_per_status"] / 1000
    return {
        "tool": tool, "jobs": jobs,
        "submit_ms": submit_s * 1000, "submit_cpu_ms": submit_cpu * 1000,
        "status_ms": status_s * 1000, "status_cpu_ms": status_cpu * 1000,
        "submits_per_second_sequential": 1 / submit_s if submit_s else math.nan,
        "ratio_cpu_submit": _safe_ratio(submit_cpu, ours_submit_cpu),
        "ratio_cpu_status": _safe_ratio(status_cpu, ours_status_cpu),
        "ratio_status_latency": _safe_ratio(status_s, head["status_p50_ms"] / 1000),
        "ratio_submit_throughput": _safe_ratio(head["submits_per_second"] * submit_s, 1.0),
        "cores_at_5_per_s": 5 * status_cpu,
        "kgahp_cores_at_5_per_s": 5 * ours_status_cpu,
    }


def _safe_ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def to_json(results: dict[str, Any]) -> str:
    def clean(obj: Any) -> Any:
        if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
            return None
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return obj
    return json.dumps(clean({**results, "headline": headline(results),
                             "targets": TARGETS,
                             "targets_met": verdicts(headline(results))}), indent=2)


def chart(results: dict[str, Any], path: str) -> str:
    """Status latency and RSS against tracked jobs; the core count in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = results["scale"]["steps"]
    tracked = [s["tracked"] for s in steps]
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    lat.plot(tracked, [s["isolated"]["p50_ms"] for s in steps], "o-", label="p50, one at a time")
    lat.plot(tracked, [s["isolated"]["p99_ms"] for s in steps], "o-", label="p99, one at a time")
    for pct in ("p50", "p99"):
        lat.plot(tracked, [s["burst"][f"{pct}_ms"] for s in steps], "s--",
                 label=f"{pct}, burst (50 in flight)")
    lat.axhline(2.0, color="grey", lw=0.8, ls=":", label="target p99 2 ms")
    lat.set_xscale("log")
    lat.set_yscale("log")
    lat.set_xlabel("tracked jobs")
    lat.set_ylabel("BLAH_JOB_STATUS to result read (ms)")
    lat.legend(fontsize=8)
    lat.grid(True, which="both", alpha=0.3)
    mem.plot(tracked, [s["rss_mb"] for s in steps], "o-", label="RSS")
    mem.plot(tracked, [s["peak_rss_mb"] for s in steps], "s--", label="peak RSS")
    mem.axhline(250, color="grey", lw=0.8, ls=":", label="target 250 MB")
    mem.set_xscale("log")
    mem.set_xlabel("tracked jobs")
    mem.set_ylabel("kgahp RSS (MB)")
    mem.set_ylim(bottom=0)
    mem.legend(fontsize=8)
    mem.grid(True, which="both", alpha=0.3)
    meta = results["meta"]
    fig.suptitle(f"kgahp vs tracked jobs - {meta['cores']} cores ({meta['cpu_model']}), "
                 f"{meta['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
