"""`kgahp render [AD_FILE|-] [--attempt N] [--server-dry-run]`: show what a submit ad becomes.

An admin's tool for checking templates and policy without a gridmanager: it reads a submit ad
(new `[ A = 1; B = "x" ]` or old one-attribute-per-line ClassAd syntax) and prints, as YAML
documents in the order the GAHP creates them, the pod and the Secrets (input sandbox,
credentials; values redacted) of that attempt. They come from the same code the GAHP's submit
runs (kgahp.manifests.assemble: templates, policy, sandbox decoration, the transfer annotation,
the final check), with the job's files read from Iwd as submit reads them, so render refuses what
submit refuses. Attempts count from 0, as real pods do. With --server-dry-run the pod is also sent
to the configured cluster with `dryRun=All`, so the API server's own validation and admission
answer too (nothing is created). Errors are one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Optional, TextIO

import yaml

from kgahp.config import Settings, load_settings
from kgahp.errors import ApiError, ConfigError, JobAdError, KgahpError
from kgahp.manifests import (
    OWNER_UID_PLACEHOLDER,
    Manifests,
    assemble,
    owner_reference,
    redacted,
    secret_contents,
)
from kgahp.podspec import Templates, load_templates, policy
from kgahp.podspec.build import ATTEMPT_MAX
from kgahp.workloads import job_owner_reference

log = logging.getLogger(__name__)


def main(argv: Optional[list[str]] = None, *, stdin: Optional[TextIO] = None,
         stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if not 0 <= args.attempt <= ATTEMPT_MAX:
        err.write(f"kgahp render: --attempt must be between 0 and {ATTEMPT_MAX}\n")
        return 1
    try:
        settings = load_settings()
        text = _read(args.ad_file, stdin or sys.stdin)
        made = render_manifests(text, settings, load_templates(settings.pod),
                                attempt=args.attempt)
        pod = made.pod
        first = made.job if made.job is not None else pod   # job mode: the Job holds the pod
        out.write(yaml.safe_dump_all([first, *made.secrets], sort_keys=False,
                                     default_flow_style=False))
        if args.server_dry_run:
            out.write(f"# server dry run: {server_dry_run(pod, settings)}\n")
    except KgahpError as exc:
        err.write(f"kgahp render: {exc}\n")
        return 1
    return 0


def render_manifests(text: str, settings: Settings, templates: Templates, *,
                     attempt: int = 0) -> Manifests:
    """What the GAHP's submit creates for a submit ad given as text (either ClassAd syntax):
    the pod, and its Secrets redacted and owned as they will be once the pod exists."""
    request = _parse_ad(new_syntax(text))
    policy.check(request, settings, templates)     # submit's order: policy before files
    bundle, creds = secret_contents(request, settings.transfer)
    made = assemble(request, settings, templates, attempt=attempt, restarts=0, bundle=bundle,
                    creds=creds)
    owner = {**owner_reference(made.pod), "uid": OWNER_UID_PLACEHOLDER}
    if made.job is not None:
        owner = {**job_owner_reference(made.job), "uid": OWNER_UID_PLACEHOLDER}
    secrets = []
    for secret in made.secrets:
        shown = redacted(secret)
        shown.setdefault("metadata", {})["ownerReferences"] = [owner]
        secrets.append(shown)
    return Manifests(made.pod, tuple(secrets), made.job)


def render_text(text: str, settings: Settings, templates: Templates, *,
                attempt: int = 0) -> dict[str, Any]:
    """The pod for a submit ad given as text (either ClassAd syntax)."""
    return render_manifests(text, settings, templates, attempt=attempt).pod


def new_syntax(text: str) -> str:
    """The ad in new ClassAd syntax, whichever syntax it was written in."""
    import classad2

    stripped = text.strip()
    if not stripped:
        raise JobAdError("The submit ad is empty")
    try:
        if stripped.startswith("["):
            ad = classad2.parseOne(stripped)
        else:
            ad = classad2.parseOne(stripped, parser=classad2.ParserType.Old)
    except Exception:
        ad = None
    if ad is None or len(ad) == 0:   # classad2 answers unparsable text with an empty ad
        raise JobAdError("The submit ad is not valid ClassAd syntax")
    return repr(ad)


def server_dry_run(pod: dict[str, Any], settings: Settings) -> str:
    """POST the pod with dryRun=All to the configured cluster; the API's verdict as a sentence."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    try:
        if settings.kube.kubeconfig == "in-cluster":
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=settings.kube.kubeconfig or None,
                                    context=settings.kube.context or None)
    except Exception as exc:
        raise ApiError(f"Cannot load the Kubernetes configuration: {exc}") from None
    api = client.CoreV1Api()
    namespace = pod["metadata"]["namespace"]
    try:
        body: Any = pod   # the client serialises plain dicts as they are
        api.create_namespaced_pod(namespace, body, dry_run="All",
                                  _request_timeout=settings.kube.api_timeout)
    except ApiException as exc:
        raise ApiError(f"The API server refused the pod: {_api_message(exc)}",
                       status=exc.status or 0, reason=exc.reason or "") from None
    except Exception as exc:  # connection refused, TLS, timeout: say so in one line
        raise ApiError(f"The API server could not be reached: {exc}") from None
    return f"accepted by the API server in namespace {namespace} (nothing was created)"


def _api_message(exc: Any) -> str:
    import json

    try:
        body = json.loads(exc.body)
        return str(body.get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return f"{exc.status} {exc.reason}"


def _parse_ad(text: str) -> Any:
    try:
        parse_submit_ad = importlib.import_module("kgahp.jobad").parse_submit_ad
    except (ImportError, AttributeError):
        raise ConfigError("This kgahp has no job ad parser (kgahp.jobad)") from None
    return parse_submit_ad(text)


def _read(path: str, stdin: TextIO) -> str:
    if path == "-":
        return stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgahp render",
        description="Print the pod and Secrets a submit ad becomes, as YAML documents.")
    parser.add_argument("ad_file", nargs="?", default="-",
                        help="submit ad file in ClassAd syntax ('-' or nothing: stdin)")
    parser.add_argument("--attempt", type=int, default=0,
                        help="attempt number (default 0, a job's first pod)")
    parser.add_argument("--server-dry-run", action="store_true",
                        help="also POST the pod with dryRun=All and report the API's verdict")
    return parser
