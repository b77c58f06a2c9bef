"""`kgahp`: with no arguments, the GAHP server the gridmanager starts; otherwise a tool."""

from __future__ import annotations

import sys
from typing import Optional

from kgahp import __version__

USAGE = """\
kgahp [--version | --help]           run the GAHP server (what KUBERNETES_GAHP starts)
kgahp sim [options]                  run the simulated Kubernetes cluster
kgahp render [AD_FILE|-] [options]   print the pod and Secrets a submit ad becomes
kgahp demo                           run a few jobs through kgahp on the simulated cluster
kgahp demo --pilots                  pilots on demand (kgahp provision) on the simulated cluster
kgahp status [options]               list the pods kgahp manages and their job status
kgahp show-config                    print every KGAHP_ knob and its value
kgahp show-config --markdown         print the knob reference (docs/configuration.md)
kgahp show-config --snippet          print condor_config.d/50-kgahp.conf
kgahp show-config --write-docs DIR   rewrite both of those files in the checkout DIR
kgahp check [--user U] [--json]      check the install, knobs, credentials, RBAC, namespaces
kgahp provision [--once] [--dry-run] [--jobs FILE] [--startds FILE] [--shapes FILE]
                                     start pilot pods for idle jobs (pilots on demand)
"""


def serve_gahp() -> int:
    """The GAHP server. Banner first; nothing slow happens before it."""
    from kgahp.protocol import claim_stdout, serve
    from kgahp.protocol.server import write_banner

    protocol_out = claim_stdout()        # before anything else can write to fd 1
    write_banner(protocol_out, __version__)   # the gridmanager waits for it with no timeout
    from kgahp.config import load_settings
    from kgahp.errors import ConfigError
    from kgahp.logsetup import setup_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        # Still speak the protocol: every request then fails with this sentence, which the
        # gridmanager shows as the resource-down reason (far better than a dead GAHP).
        from kgahp.config import Settings

        settings = Settings()
        config_error: Optional[str] = str(exc)
    else:
        config_error = None
    setup_logging(settings.log_file, settings.server.debug, settings.server.max_log)
    import logging

    log = logging.getLogger("kgahp")
    log.info("kgahp %s starting (instance %s, namespaces %s, state %s)", __version__,
             settings.instance, ",".join(settings.kube.namespaces), settings.state_dir)
    if config_error is None:   # what `kgahp check` compares with the configuration later
        from kgahp.check_local import record_running

        record_running(settings, __version__)
    from kgahp.app import StartingService

    handlers = StartingService(settings, error=config_error, freeze_heap=True)
    try:
        return serve(handlers, workers=settings.server.workers,
                     max_queued=settings.server.max_queued, stdin=sys.stdin.buffer,
                     out=protocol_out, version=__version__, banner_sent=True)
    finally:
        handlers.close()
        log.info("kgahp exiting")


def _write_reference(root: str) -> int:
    """Rewrite the files generated from the knob table in the checkout `root`."""
    from pathlib import Path

    from kgahp.knob_reference import reference_texts

    base = Path(root)
    texts = reference_texts()
    missing = sorted({str(Path(p).parent) for p in texts if not (base / p).parent.is_dir()})
    if missing:   # not a kgahp checkout: write nothing rather than scatter files
        print(f"kgahp show-config: {root} is not a kgahp checkout (no {', '.join(missing)} "
              "folder)", file=sys.stderr)
        return 1
    for path, text in texts.items():
        target = base / path
        changed = not target.is_file() or target.read_text(encoding="utf-8") != text
        if changed:
            target.write_text(text, encoding="utf-8")
        print(f"{path}: {'rewritten' if changed else 'up to date'}")
    return 0


def _show_config(args: list[str]) -> int:
    from kgahp.config import KNOBS, PREFIX, describe, load_settings
    from kgahp.errors import ConfigError
    from kgahp.knob_reference import config_snippet, knobs_markdown

    if args == ["--markdown"]:
        print(knobs_markdown(), end="")
        return 0
    if args == ["--snippet"]:
        print(config_snippet(), end="")
        return 0
    if len(args) == 2 and args[0] == "--write-docs":
        return _write_reference(args[1])
    if args:
        print(f"kgahp show-config: unexpected {' '.join(args)!r}\n\n{USAGE}", file=sys.stderr,
              end="")
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:   # one sentence naming the knob, never a traceback
        print(f"kgahp show-config: {exc}", file=sys.stderr)
        return 1
    for key, value in describe(settings).items():
        print(f"{key} = {value}")
    print(f"# log file: {settings.log_file or 'stderr'}; state: {settings.state_dir}; "
          f"{len(KNOBS)} {PREFIX}* knobs")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return serve_gahp()
    command, rest = args[0], args[1:]
    if command in ("--version", "-V", "version"):
        print(f"kgahp {__version__}")
        return 0
    if command in ("--help", "-h", "help"):
        print(USAGE, end="")
        return 0
    if command == "sim":
        from kgahp_sim.cli import main as sim_main

        return sim_main(rest)
    if command == "render":
        from kgahp.render import main as render_main

        return render_main(rest)
    if command == "demo" and rest[:1] == ["--pilots"]:
        from kgahp.provision.demo import main as pilots_demo

        return pilots_demo(rest[1:])
    if command == "demo":
        from kgahp.demo import main as demo_main

        return demo_main(rest)
    if command == "status":
        from kgahp.status_cli import main as status_main

        return status_main(rest)
    if command == "show-config":
        return _show_config(rest)
    if command == "check":
        from kgahp.check import main as check_main

        return check_main(rest)
    if command == "provision":
        from kgahp.provision.cli import main as provision_main

        return provision_main(rest)
    print(f"kgahp: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2
