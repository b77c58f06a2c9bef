"""`kgahp check [--user NAME] [--json] [--no-cluster]`: what a site would otherwise learn one held
job at a time, checked at once.

Run it on the schedd (or CE) host as the job owner, or as root with --user. One line per check,
each failure with its fix; the exit status is 1 when any check failed (warnings do not fail),
2 for a usage error. --json prints the same as one JSON document for automation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Optional, TextIO

from kgahp.check_local import (
    FAIL,
    INFO,
    WARN,
    Account,
    Result,
    account,
    check_config,
    check_executable,
    check_images,
    check_log,
    check_private_dir,
    check_running_gahp,
    condor_param,
    knob_sources,
    path_problem,
)
from kgahp.config import PREFIX, Settings
from kgahp.errors import KgahpError

MARK = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "info": "info"}


def for_account(settings: Settings, who: Account, current: bool) -> Settings:
    """Settings as the GAHP would see them when started as `who`: the user-relative defaults
    (state directory, kubeconfig) resolve in that user's home, not in ours."""
    settings = replace(settings, user=who.name)
    if current:
        return settings
    server, kube = settings.server, settings.kube
    if not server.state_dir:
        server = replace(server, state_dir=os.path.join(who.home, ".kgahp"))
    if not kube.kubeconfig:
        kube = replace(kube, kubeconfig=os.path.join(who.home, ".kube", "config"))
    return replace(settings, server=server, kube=kube)


def run_checks(who: Account, *, current: bool = True, cluster: bool = True,
               environ: Optional[dict[str, str]] = None) -> list[Result]:
    results = list(check_executable(who, configured=condor_param("KUBERNETES_GAHP")))
    settings, config_results = check_config(who, environ)
    results += config_results
    if settings is None:
        return results
    settings = for_account(settings, who, current)
    from kgahp.podspec import Templates, load_templates

    templates: Optional[Templates]
    try:
        templates = load_templates(settings.pod)
    except KgahpError as exc:
        results.append(Result("templates", FAIL, str(exc),
                              f"correct {PREFIX}POD_TEMPLATE / {PREFIX}QUEUE_CONFIG"))
        templates = None
    else:
        queues = ", ".join(sorted(templates.queues)) or "none"
        results.append(Result("templates", "ok", f"pod template "
                              f"{settings.pod.pod_template or '(built-in)'} and queue config "
                              f"{settings.pod.queue_config or '(none)'} parse; queues: {queues}"))
    results += check_images(settings)
    results.append(check_private_dir("state", settings.state_dir, who, "STATE_DIR"))
    results.append(check_log(settings, who))
    values, _ = knob_sources(environ)
    results.append(check_running_gahp(settings, values))
    kubeconfig = settings.kube.kubeconfig
    if kubeconfig and kubeconfig.strip().lower() != "in-cluster":
        path = os.path.expanduser(kubeconfig)
        why = path_problem(path, who, "r")
        if why:
            results.append(Result("kubeconfig", FAIL, why,
                                  f"make {kubeconfig} readable by {who.name} (and by nobody "
                                  "else: it holds credentials)"))
        elif os.stat(path).st_mode & 0o044:
            results.append(Result("kubeconfig", WARN, f"{path} is readable by other users",
                                  f"chmod go-rwx {path}: it holds {who.name}'s credentials"))
        else:
            results.append(Result("kubeconfig", "ok", f"{path} is readable by {who.name} "
                                  "and private"))
    if cluster and templates is not None:
        from kgahp.check_cluster import check_cluster

        results += check_cluster(settings, templates)
    return results


def render(results: list[Result], out: TextIO) -> None:
    for r in results:
        line = f"{MARK.get(r.status, r.status)} {r.check}: {r.detail}"
        if r.fix and r.status in (FAIL, WARN, INFO):
            line += f" -- fix: {r.fix}"
        out.write(line + "\n")
        if r.check == "config":
            for name, knob in (r.data.get("knobs") or {}).items():
                out.write(f"       {name} = {knob['value']}  [{knob['source']}]\n")
    failed = sum(1 for r in results if r.status == FAIL)
    warned = sum(1 for r in results if r.status == WARN)
    out.write(f"{len(results)} checks: {failed} failed, {warned} warnings\n")


def main(argv: Optional[list[str]] = None, *, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = argparse.ArgumentParser(
        prog="kgahp check",
        description="Check that kgahp can work for a job owner: executable, knobs, "
                    "directories, credentials, RBAC, namespaces, Pod Security, named objects.")
    parser.add_argument("--user", help="check for this job owner (default: the running user; "
                        "run as root to check another)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-cluster", action="store_true",
                        help="only the checks on this host (no Kubernetes requests)")
    args = parser.parse_args(argv)
    try:
        who = account(args.user)
    except KeyError:
        err.write(f"kgahp check: no such user {args.user!r}\n")
        return 2
    current = args.user is None or who.uid == os.getuid()
    results = run_checks(who, current=current, cluster=not args.no_cluster)
    failed = any(r.status == FAIL for r in results)
    if args.json:
        json.dump({"user": who.name, "ok": not failed,
                   "checks": [r.as_dict() for r in results]}, out, indent=1)
        out.write("\n")
    else:
        render(results, out)
    return 1 if failed else 0
