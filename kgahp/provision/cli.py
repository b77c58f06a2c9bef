"""`kgahp provision [--once] [--dry-run] [--jobs FILE] [--startds FILE] [--shapes FILE]`.

Runs a provisioning cycle every KGAHP_PROVISION_INTERVAL seconds until SIGTERM (condor_master
and the kubelet both stop it so). `--once` runs one cycle; `--dry-run` creates and deletes
nothing (and needs no cluster: without usable credentials it assumes no pilots exist);
`--once --dry-run` prints the per-shape table on stdout. `--jobs` and `--startds` read ClassAd
snapshots (`condor_q -l`, `condor_status -l` output) instead of asking the pool, so anyone can
ask "what would it do with this queue?".
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any, Optional

from kgahp.errors import ConfigError, KgahpError

log = logging.getLogger("kgahp.provision")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kgahp provision", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide, log and print, but create and delete nothing")
    parser.add_argument("--jobs", metavar="FILE",
                        help="idle jobs from this condor_q -l snapshot, not from the schedds")
    parser.add_argument("--startds", metavar="FILE",
                        help="startd ads from this condor_status -l snapshot, not the collector")
    parser.add_argument("--shapes", metavar="FILE",
                        help="the shapes YAML (default: KGAHP_PROVISION_SHAPES)")
    # condor_master starts the daemons in its DAEMON_LIST with -f (stay in the foreground)
    parser.add_argument("-f", dest="foreground", action="store_true", help=argparse.SUPPRESS)
    return parser


def _log_file(settings: Any, interactive: bool) -> str:
    if interactive:
        return ""
    if settings.server.log:
        return str(settings.server.log)
    if settings.condor_log_dir:
        return os.path.join(settings.condor_log_dir, "KGahpProvisionLog")
    return ""


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    from kgahp.config import load_settings
    from kgahp.logsetup import setup_logging

    overrides = {"PROVISION_SHAPES": args.shapes} if args.shapes else None
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        print(f"kgahp provision: {exc}", file=sys.stderr)
        return 1
    setup_logging(_log_file(settings, args.once or args.dry_run), settings.server.debug,
                  settings.server.max_log)
    try:
        provisioner = _build(settings, args)
    except KgahpError as exc:
        print(f"kgahp provision: {exc}", file=sys.stderr)
        log.error("%s", exc)
        return 1
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from kgahp.provision.cycle import format_table

    log.info("kgahp provision starting: %d shapes, namespaces %s, instance %s%s",
             len(provisioner.shapes), ",".join(provisioner.namespaces),
             settings.provision.instance, " (dry run)" if args.dry_run else "")
    while True:
        try:
            report = provisioner.cycle()
        except KgahpError as exc:   # the pool or the API did not answer: try next cycle
            log.warning("cycle skipped: %s", exc)
            if args.once:
                print(f"kgahp provision: {exc}", file=sys.stderr)
                return 1
        else:
            if args.once:
                if args.dry_run:
                    sys.stdout.write(format_table(report))
                return 1 if report.actions.errors else 0
        if stop.wait(settings.provision.interval):
            log.info("kgahp provision stopping")
            return 0


def _build(settings: Any, args: argparse.Namespace) -> Any:
    from kgahp.kube.api import Kube
    from kgahp.kube.connect import api_client
    from kgahp.podspec import load_templates
    from kgahp.provision.cycle import Provisioner
    from kgahp.provision.shapes import load_shapes

    shapes = load_shapes(settings.provision.shapes)
    templates = load_templates(settings.pod)
    try:
        kube: Optional[Kube] = Kube(api_client(settings.kube), settings.kube, retry_deadline=60)
    except ConfigError as exc:
        if not args.dry_run:
            raise
        print(f"kgahp provision: no cluster ({exc}); assuming no pilot pods exist",
              file=sys.stderr)
        kube = None
    return Provisioner(settings, shapes, templates, kube=kube, jobs_file=args.jobs,
                       startds_file=args.startds, dry_run=args.dry_run)
