"""Files in and out of the job pod, and the job's credentials as Secrets.

I/O happens only in `gather_inputs` (reads submit-host files), `extract_outputs` (writes into Iwd)
and `read_credential`; everything else is pure.
"""

from __future__ import annotations

from kgahp.sandbox.credentials import (
    CREDENTIALS_SECRET_PLACEHOLDER,
    proxy_secret_data,
    proxy_secret_manifest,
    read_credential,
)
from kgahp.sandbox.decorate import decorate_pod
from kgahp.sandbox.inputs import InputBundle, gather_inputs, input_secret_manifest
from kgahp.sandbox.outputs import extract_outputs

__all__ = [
    "CREDENTIALS_SECRET_PLACEHOLDER",
    "InputBundle",
    "decorate_pod",
    "extract_outputs",
    "gather_inputs",
    "input_secret_manifest",
    "proxy_secret_data",
    "proxy_secret_manifest",
    "read_credential",
]
