"""Files in and out of the job pod, and the job's credentials as Secrets.

I/O happens only in `gather_inputs` (reads submit-host files), `extract_outputs` (writes into Iwd)
and `read_credential`; everything else is pure. The service's order for one job:

    bundle = gather_inputs(req, transfer)                       # TransferError -> submit fails
    decorate_pod(pod, req, transfer, inputs=bundle, input_secret=in_name, proxy_secret=px_name)
    create input_secret_manifest(...) / proxy_secret_manifest(...), then the pod
    ... main container `job` terminated ...
    extract_outputs(<log of container "job">, req, transfer)    # before reporting status 4
    cpu_usage(<the same log>)                                   # RemoteUserCpu/RemoteSysCpu

Modes (KGAHP_TRANSFER_MODE):
* api: inputs travel in one immutable Secret (limit KGAHP_MAX_INPUT_BYTES; Secrets hold ~1 MiB),
  an init container (KGAHP_HELPER_IMAGE) copies them into an emptyDir at KGAHP_SANDBOX_PATH, and
  a fixed sh wrapper runs the payload there, then prints one framed base64 tar(.gz) of Out, Err and
  the outputs on the container log (limit KGAHP_MAX_OUTPUT_BYTES on the compressed archive; keep it
  below the kubelet's log size cap, 10 MiB by default, allowing for base64's 4/3). The job image
  needs sh, tar, wc, base64 (or openssl) and preferably sha256sum, gzip and cmp.
  TransferOutput unset = every new or modified top-level regular file, as HTCondor does.
  Empty input directories and symbolic links in the output are not transferred.
* shared: KGAHP_SHARED_VOLUME (`pvc:<claim>[:<submit-host path of its root>]` or
  `hostPath:<dir>`) is mounted at Iwd (subPath below the root); the wrapper writes Out/Err in
  place. The pod must run as the job owner's uid for the files to be usable (pod template).
* none: the command is untouched; nothing is shipped.

Credentials: see `credentials` (X509_USER_PROXY=/kgahp/creds/x509up, a directory mount of a
mutable Secret; template volumes naming CREDENTIALS_SECRET_PLACEHOLDER get the same Secret).
"""

from __future__ import annotations

from kgahp.sandbox.credentials import (
    CREDENTIALS_SECRET_PLACEHOLDER,
    credentials_secret_manifest,
    gather_credentials,
    proxy_secret_data,
    proxy_secret_manifest,
    read_credential,
)
from kgahp.sandbox.decorate import decorate_pod
from kgahp.sandbox.inputs import InputBundle, gather_inputs, input_secret_manifest
from kgahp.sandbox.outputs import (
    STDERR_MEMBER,
    STDOUT_MEMBER,
    CpuUsage,
    cpu_usage,
    extract_outputs,
    make_frame,
)

__all__ = [
    "CREDENTIALS_SECRET_PLACEHOLDER",
    "STDERR_MEMBER",
    "STDOUT_MEMBER",
    "CpuUsage",
    "InputBundle",
    "cpu_usage",
    "credentials_secret_manifest",
    "decorate_pod",
    "extract_outputs",
    "gather_credentials",
    "gather_inputs",
    "input_secret_manifest",
    "make_frame",
    "proxy_secret_data",
    "proxy_secret_manifest",
    "read_credential",
]
