"""`kgahp sim`: serve the simulated cluster until SIGINT/SIGTERM (like kwok)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Optional

from kgahp_sim.simconfig import SimConfig


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="kgahp sim", description="Run a simulated Kubernetes cluster (API v1.36).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--nodes", type=int, default=defaults.nodes)
    parser.add_argument("--cpu", default=defaults.cpu, help="allocatable CPU per node")
    parser.add_argument("--memory", default=defaults.memory, help="allocatable memory per node")
    parser.add_argument("--gpus", type=int, default=defaults.gpus, help="nvidia.com/gpu per node")
    parser.add_argument("--workdir", default="", help="pods' directories and logs (temp dir)")
    parser.add_argument("--kubeconfig", default="", help="write a kubeconfig here once ready")
    parser.add_argument("--no-processes", action="store_true",
                        help="script every container instead of running local processes")
    parser.add_argument("--anonymous-admin", action="store_true",
                        help="treat requests without a token as admin (kubectl sends no "
                             "bearer token over plain http)")
    parser.add_argument("--root-image", action="append", default=[], metavar="PATTERN",
                        help="an image (shell pattern) whose own user is root: under "
                             "runAsNonRoot without runAsUser the kubelet refuses it "
                             "(repeatable)")
    parser.add_argument("--kueue-queue", action="append", default=[],
                        metavar="NAME=cpu=N,memory=Q,pods=N",
                        help="run the Kueue stand-in with this LocalQueue and quota: pods "
                             "labelled kueue.x-k8s.io/queue-name=NAME wait gated until the "
                             "quota allows (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    from kgahp_sim.cluster import SimCluster
    from kgahp_sim.kueue import parse_queue_flag

    try:
        queues = dict(parse_queue_flag(text) for text in args.kueue_queue)
    except ValueError as err:
        print(f"kgahp sim: --kueue-queue: {err}", file=sys.stderr)
        return 2
    config = SimConfig(nodes=args.nodes, cpu=args.cpu, memory=args.memory, gpus=args.gpus,
                       workdir=args.workdir, run_processes=not args.no_processes,
                       root_images=tuple(args.root_image), kueue_queues=queues)
    cluster = SimCluster(config, host=args.host, port=args.port,
                         anonymous_admin=args.anonymous_admin).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    where = ""
    if args.kubeconfig:
        where = "; kubeconfig written to " + cluster.write_kubeconfig(args.kubeconfig)
    print(f"kgahp sim: serving Kubernetes API v1.36 at {cluster.url}{where}", file=sys.stderr,
          flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
