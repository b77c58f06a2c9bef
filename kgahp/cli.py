"""`kgahp`: with no arguments, the GAHP server the gridmanager starts; otherwise a tool."""

from __future__ import annotations

import sys
from typing import Optional

from kgahp import __version__

USAGE = """\
kgahp [--version | --help]           run the GAHP server (what KUBERNETES_GAHP starts)
kgahp sim [options]                  run the simulated Kubernetes cluster
kgahp render [AD_FILE|-] [options]   print the pod a submit ad becomes
kgahp demo                           run a few jobs through kgahp on the simulated cluster
kgahp status [options]               list the pods kgahp manages and their job status
kgahp show-config                    print every KGAHP_ knob and its value
kgahp check [--user U] [--json]      check the install, knobs, credentials, RBAC, namespaces
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
    setup_logging(settings.log_file, settings.server.debug)
    import logging

    log = logging.getLogger("kgahp")
    log.info("kgahp %s starting (instance %s, namespaces %s, state %s)", __version__,
             settings.instance, ",".join(settings.kube.namespaces), settings.state_dir)
    if config_error is None:   # what `kgahp check` compares with the configuration later
        from kgahp.check_local import record_running

        record_running(settings, __version__)
    from kgahp.lazy import LazyService

    handlers = LazyService(settings, error=config_error)
    try:
        return serve(handlers, workers=settings.server.workers,
                     max_queued=settings.server.max_queued, stdin=sys.stdin.buffer,
                     out=protocol_out, version=__version__, banner_sent=True)
    finally:
        handlers.close()
        log.info("kgahp exiting")


def _show_config() -> int:
    from kgahp.config import KNOBS, PREFIX, describe, load_settings
    from kgahp.errors import ConfigError

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
        from kgahp.sim.cli import main as sim_main

        return sim_main(rest)
    if command == "render":
        from kgahp.render import main as render_main

        return render_main(rest)
    if command == "demo":
        from kgahp.demo import main as demo_main

        return demo_main(rest)
    if command == "status":
        from kgahp.status_cli import main as status_main

        return status_main(rest)
    if command == "show-config":
        return _show_config()
    if command == "check":
        from kgahp.check import main as check_main

        return check_main(rest)
    print(f"kgahp: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2
