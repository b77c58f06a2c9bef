"""Kubernetes' name grammar, in one place: DNS labels and subdomains, label values, qualified
names (label keys, extended resources) and environment variable names, as the API server checks
them (k8s.io/apimachinery/pkg/util/validation).

A bottom module: it imports nothing of kgahp, so configuration, the job-ad reader and the pod
builder all use the same rules.
"""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63      # the name part after an optional `prefix/`
HASH_LEN = 8

_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

# apimachinery's relaxedEnvVarNameFmtErrMsg, word for word
ENV_NAME_RULE = ("a valid environment variable name must consist only of printable ASCII "
                 "characters other than '='")


def is_dns_label(text: str) -> bool:
    """RFC 1123 label (namespace and pod names): lower-case alphanumerics and '-', <= 63."""
    return len(text) <= DNS_LABEL_MAX and bool(_DNS_LABEL_RE.fullmatch(text))


def is_dns_subdomain(text: str) -> bool:
    """RFC 1123 subdomain (priorityClassName, a label key's prefix): dot-separated labels."""
    return len(text) <= DNS_SUBDOMAIN_MAX and bool(_DNS_SUBDOMAIN_RE.fullmatch(text))


def is_label_value(text: str) -> bool:
    """A label value: empty, or alphanumerics with '-', '_', '.' inside, <= 63."""
    return len(text) <= LABEL_VALUE_MAX and bool(_LABEL_VALUE_RE.fullmatch(text))


def is_qualified_name(text: str) -> bool:
    """A qualified name (label key, resource name): `[DNS subdomain/]name`, name <= 63."""
    prefix, slash, name = text.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return len(name) <= QUALIFIED_NAME_MAX and bool(_NAME_PART_RE.fullmatch(name))


def short_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def label_fragment(text: str, budget: int) -> str:
    """`text` cut down to at most `budget` characters that may stand in a label value:
    other characters become '-', and it starts and ends alphanumeric (may come out empty)."""
    clean = re.sub(r"[^-A-Za-z0-9_.]+", "-", text)[:budget]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", clean)


def label_value(text: str) -> str:
    """Any string as a valid label value; a changed or cut value gets a hash of the original."""
    if is_label_value(text):
        return text
    clean = label_fragment(text, LABEL_VALUE_MAX - HASH_LEN - 1)
    digest = short_hash(text)
    return f"{clean}-{digest}" if clean else digest


def env_name_problems(name: str) -> list[str]:
    """Why Kubernetes (v1.30+) refuses this environment variable name; [] when it accepts it."""
    problems = []
    if not name:
        problems.append("environment variable name must not be empty")
    if any(not " " <= ch <= "~" or ch == "=" for ch in name):
        problems.append(ENV_NAME_RULE)
    if name == ".":
        problems.append("must not be '.'")
    elif name == "..":
        problems.append("must not be '..'")
    elif name.startswith(".."):
        problems.append("must not start with '..'")
    return problems
