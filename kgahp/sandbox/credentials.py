"""Per-job credential Secret (the X.509 proxy) and how the pod mounts it.

The Secret is mounted as a directory (never `subPath`), so when the service patches it on
BLAH_JOB_REFRESH_PROXY the kubelet refreshes the file inside the running pod. The file mode is 0600;
pods that run as non-root need `securityContext.fsGroup` in the pod template to read it.

Admin templates may mount the same per-job Secret themselves (for example for a pilot that wants it
at another path): a volume whose `secret.secretName` is CREDENTIALS_SECRET_PLACEHOLDER is pointed
at the job's credential Secret, or made `optional` when the job has none. Token files (SciTokens,
IDTOKENs) for pilots ride in the same Secret when the admin names them in KGAHP_CREDENTIAL_FILES:
a TransferInput entry with such a name is kept out of the input sandbox and appears at
$KGAHP_CREDENTIALS/<name> (mode 0600) instead.
"""

from __future__ import annotations

import base64
import posixpath

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox.safepath import submit_path

PROXY_KEY = "x509up"
CREDS_VOLUME = "kgahp-creds"
CREDS_MOUNT = "/kgahp/creds"
PROXY_ENV = "X509_USER_PROXY"
CREDENTIALS_ENV = "KGAHP_CREDENTIALS"
CREDENTIAL_MODE = 0o600
CREDENTIALS_SECRET_PLACEHOLDER = "kgahp-job-credentials"


def read_credential(path: str) -> bytes:
    """The credential file's bytes; TransferError naming the path only (never the content)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise TransferError(f"credential file {path} cannot be read: {exc.strerror}") from None


def proxy_secret_data(proxy_bytes: bytes) -> dict[str, str]:
    """The Secret `data` for a proxy: also the body of the refresh patch."""
    return {PROXY_KEY: base64.b64encode(proxy_bytes).decode("ascii")}


def opaque_secret(name: str, namespace: str, labels: dict[str, str], data: dict[str, str],
                  *, immutable: bool = False) -> dict:
    """A per-job Opaque Secret manifest (the service adds the owner reference)."""
    secret: dict = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "type": "Opaque",
    }
    if immutable:
        secret["immutable"] = True
    secret["data"] = dict(data)
    return secret


def proxy_secret_manifest(name: str, namespace: str, proxy_bytes: bytes,
                          labels: dict[str, str]) -> dict:
    """The per-job proxy Secret (mutable, so a renewed proxy can be patched in)."""
    return opaque_secret(name, namespace, labels, proxy_secret_data(proxy_bytes))


def credential_entries(req: JobRequest, transfer: TransferSettings) -> dict[str, str]:
    """{file name: TransferInput entry} for the inputs the admin declared credentials."""
    wanted = set(transfer.credential_files)
    found: dict[str, str] = {}
    for entry in req.transfer_input:
        name = posixpath.basename(entry.rstrip("/"))
        if name in wanted:
            found[name] = entry
    return found


def gather_credentials(req: JobRequest, transfer: TransferSettings) -> dict[str, bytes]:
    """The job's credential files (its proxy as `x509up`, declared token files by name)."""
    files: dict[str, bytes] = {}
    if req.x509userproxy:
        files[PROXY_KEY] = read_credential(req.x509userproxy)
    for name, entry in credential_entries(req, transfer).items():
        files[name] = read_credential(submit_path(req.iwd, entry))
    return files


def credentials_secret_manifest(name: str, namespace: str, files: dict[str, bytes],
                                labels: dict[str, str]) -> dict:
    """The per-job credential Secret (mutable, so a renewed proxy can be patched in)."""
    data = {key: base64.b64encode(value).decode("ascii") for key, value in files.items()}
    return opaque_secret(name, namespace, labels, data)


def proxy_volume(secret_name: str, keys: tuple[str, ...] = (PROXY_KEY,)) -> dict:
    return {
        "name": CREDS_VOLUME,
        "secret": {
            "secretName": secret_name,
            "defaultMode": CREDENTIAL_MODE,
            "items": [{"key": k, "path": k, "mode": CREDENTIAL_MODE} for k in keys],
        },
    }


def proxy_mount() -> dict:
    return {"name": CREDS_VOLUME, "mountPath": CREDS_MOUNT, "readOnly": True}


def proxy_path_in_pod() -> str:
    return f"{CREDS_MOUNT}/{PROXY_KEY}"


def resolve_placeholders(volumes: list[dict], secret_name: str | None) -> None:
    """Point template volumes that name the placeholder at the job's credential Secret."""
    for volume in volumes:
        secret = volume.get("secret")
        if isinstance(secret, dict) and secret.get("secretName") == CREDENTIALS_SECRET_PLACEHOLDER:
            if secret_name:
                secret["secretName"] = secret_name
            else:
                secret["optional"] = True
