"""Request validation with kube-apiserver v1.36's exact messages and ``details.causes``.

Each check appends a Cause in the order the apiserver validates; ``invalid()`` turns the list
into the 422 it would answer. Decode-level problems (bad quantity, bad base64, wrong kind,
unknown fields under Strict) are 400s raised straight away.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from kgahp_sim.defaulting import (
    BUILTIN_PRIORITY_CLASSES,
    CONTAINER_ORDER,
    GROUP_OF,
    KIND_OF,
    META_ORDER,
    POD_SPEC_ORDER,
)
from kgahp_sim.quantity import QuantityError, parse_quantity
from kgahp_sim.store import ApiStatusError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
# v1.36 (RelaxedEnvironmentVariableValidation, GA): any printable ASCII but '=' (03i2)
ENV_MSG = ("a valid environment variable name must consist only of printable ASCII characters "
           "other than '='")
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')")
POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)")


@dataclass
class Cause:
    field: str
    reason: str   # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    message: str

    def render(self) -> dict:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def bad(field: str, value: Any, detail: str) -> Cause:
    return Cause(field, "FieldValueInvalid", f"Invalid value: {_show(value)}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, "FieldValueForbidden", f"Forbidden: {detail}")


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    return Cause(field, "FieldValueNotSupported",
                 f"Unsupported value: {_show(value)}: supported values: "
                 + ", ".join(json.dumps(s) for s in supported))


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiStatusError:
    """The 422 the apiserver answers for these causes."""
    parts = list(dict.fromkeys(f"{c.field}: {c.message}" for c in causes))  # Go dedups (23a5)
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [c.render() for c in causes]
    return ApiStatusError(422, "Invalid", f'{kind}{"." + group if group else ""} "{name}" '
                          f"is invalid: {summary}", details)


def options_invalid(kind: str, field: str, reason: str, message: str) -> ApiStatusError:
    return invalid(kind, "", [Cause(field, reason, message)], group="meta.k8s.io")


def cannot_handle(kind: str, detail: str, sent_kind: str | None = None) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", f'{sent_kind or kind} in version "v1" cannot be '
                          f"handled as a {kind}: {detail}")


# ----- names, labels, annotations --------------------------------------------------------------
def check_subdomain(field: str, value: str) -> list[Cause]:
    causes = []
    if len(value) > 253:
        causes.append(bad(field, value, "must be no more than 253 characters"))
    if not DNS1123_SUBDOMAIN.match(value):
        causes.append(bad(field, value, SUBDOMAIN_MSG))
    return causes


def check_label(field: str, value: str) -> list[Cause]:
    causes = []
    if len(value) > 63:
        causes.append(bad(field, value, "must be no more than 63 characters"))
    if not DNS1123_LABEL.match(value):
        causes.append(bad(field, value, LABEL_MSG))
    return causes


def check_qualified_name(field: str, key: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if "/" in key:
        if not prefix:
            causes.append(bad(field, key, "prefix part must be non-empty"))
        elif len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix):
            causes.append(bad(field, key, "prefix part " + SUBDOMAIN_MSG))
    if not name:
        causes.append(bad(field, key, "name part must be non-empty"))
    else:
        if len(name) > 63:
            causes.append(bad(field, key, "name part must be no more than 63 characters"))
        if not QUALIFIED_NAME.match(name):
            causes.append(bad(field, key, QUALIFIED_MSG))
    return causes


def check_metadata(meta: dict, *, namespaced: bool, name_check: Any = check_subdomain,
                   ) -> list[Cause]:
    causes: list[Cause] = []
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        causes.append(required("metadata.name", "name or generateName is required"))
    elif name:
        causes += name_check("metadata.name", name)
    elif generate:
        causes += [Cause("metadata.generateName", c.reason, c.message)
                   for c in name_check("metadata.generateName",
                                       generate.rstrip("-") or "x")]
    for key, value in (meta.get("labels") or {}).items():
        causes += check_qualified_name("metadata.labels", str(key))
        if not isinstance(value, str):
            continue
        if len(value.encode()) > 63:   # v1.36 counts bytes (03c)
            causes.append(bad("metadata.labels", value, "must be no more than 63 bytes"))
        if not LABEL_VALUE.match(value):
            causes.append(bad("metadata.labels", value, LABEL_VALUE_MSG))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += [Cause("metadata.annotations", c.reason, c.message)
                   for c in check_qualified_name("metadata.annotations", str(key).lower())]
    total = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if total > 262144:
        causes.append(Cause("metadata.annotations", "FieldValueTooLong",
                            "Too long: must have at most 262144 bytes"))
    return causes


# ----- decoding (400s) -------------------------------------------------------------------------
_POD_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
# The Go types' fields are the ones defaulting serialises, in its field order.
_META_FIELDS = frozenset(META_ORDER)
_SPEC_FIELDS = frozenset(POD_SPEC_ORDER)
_CONTAINER_FIELDS = frozenset(CONTAINER_ORDER)
_SECRET_FIELDS = {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
_CONFIGMAP_FIELDS = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}


def _unknown_fields(resource: str, body: dict) -> list[str]:
    """Paths of fields the Go types do not have, removed from body as the decoder does."""
    found: list[str] = []

    def scan(obj: Any, allowed: AbstractSet[str], prefix: str) -> None:
        if isinstance(obj, dict):
            for key in [k for k in obj if k not in allowed]:
                found.append(f"{prefix}{key}")
                del obj[key]  # the decoder drops what the Go type has no field for

    if resource == "pods":
        scan(body, _POD_FIELDS, "")
        scan(body.get("metadata"), _META_FIELDS, "metadata.")
        spec = body.get("spec")
        scan(spec, _SPEC_FIELDS, "spec.")
        if isinstance(spec, dict):
            for key in ("initContainers", "containers"):
                for i, c in enumerate(spec.get(key) or []):
                    scan(c, _CONTAINER_FIELDS, f"spec.{key}[{i}].")
    elif resource == "secrets":
        scan(body, _SECRET_FIELDS, "")
        scan(body.get("metadata"), _META_FIELDS, "metadata.")
    elif resource == "configmaps":
        scan(body, _CONFIGMAP_FIELDS, "")
        scan(body.get("metadata"), _META_FIELDS, "metadata.")
    return found


def _base64_error(text: str) -> str | None:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    stripped = text.replace("\r", "").replace("\n", "")
    for i, ch in enumerate(stripped):
        if ch == "=":
            break
        if ch not in alphabet:
            return f"illegal base64 data at input byte {i}"
    try:
        base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {max(0, len(stripped) - 1)}"
    return None


def check_decode(resource: str, body: Any, strict: bool) -> list[str]:
    """400s a Go decoder would raise; returns the unknown-field warnings otherwise."""
    kind = KIND_OF[resource]
    if not isinstance(body, dict):
        raise ApiStatusError(400, "BadRequest", f"the object provided is unrecognized (must be "
                             f"of type {kind}): couldn't get version/kind; json parse error: "
                             "cannot unmarshal into Go value")
    sent_kind = body.get("kind") or kind
    if sent_kind != kind:
        raise cannot_handle(kind, f"converting (v1.{sent_kind}) to (core.{kind}): unknown "
                            "conversion", sent_kind)
    if resource == "pods":
        for key in ("initContainers", "containers"):
            for c in (body.get("spec") or {}).get(key) or []:
                for section in ("requests", "limits"):
                    for value in ((c.get("resources") or {}).get(section) or {}).values():
                        try:
                            parse_quantity(value)
                        except QuantityError as err:
                            raise cannot_handle(kind, str(err)) from err
    if resource == "secrets":
        for value in (body.get("data") or {}).values():
            problem = _base64_error(str(value))
            if problem:
                raise cannot_handle(kind, problem)
    unknown = _unknown_fields(resource, body)
    if unknown and strict:
        detail = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise cannot_handle(kind, f"strict decoding error: {detail}")
    return [f'unknown field "{u}"' for u in unknown]


# ----- objects ---------------------------------------------------------------------------------
def _check_resources(prefix: str, resources: dict) -> list[Cause]:
    causes: list[Cause] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            if parse_quantity(value) < 0:
                causes.append(bad(f"{prefix}.resources.{section}[{name}]", str(value),
                                  "must be greater than or equal to 0"))
    for name, value in requests.items():
        if name in limits and parse_quantity(value) > parse_quantity(limits[name]) >= 0:
            causes.append(bad(f"{prefix}.resources.requests", str(value),
                              f"must be less than or equal to {name} limit of {limits[name]}"))
    return causes


def _check_containers(key: str, containers: list, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(containers):
        prefix = f"spec.{key}[{i}]"
        name = c.get("name") or ""
        if not name:
            causes.append(required(f"{prefix}.name"))
        else:
            causes += check_label(f"{prefix}.name", name)
            if name in seen:
                causes.append(Cause(f"{prefix}.name", "FieldValueDuplicate",
                                    f"Duplicate value: {_show(name)}"))
            seen.add(name)
        if not c.get("image"):
            causes.append(required(f"{prefix}.image"))
        for j, env in enumerate(c.get("env") or []):
            env_name = env.get("name") or ""
            if not env_name:
                causes.append(required(f"{prefix}.env[{j}].name"))
            else:
                causes += [bad(f"{prefix}.env[{j}].name", env_name, m)
                           for m in env_name_problems(env_name)]
        for j, mount in enumerate(c.get("volumeMounts") or []):
            if mount.get("name") not in volumes:
                causes.append(Cause(f"{prefix}.volumeMounts[{j}].name", "FieldValueNotFound",
                                    f"Not found: {_show(mount.get('name'))}"))
            if not mount.get("mountPath"):
                causes.append(required(f"{prefix}.volumeMounts[{j}].mountPath"))
        causes += _check_resources(prefix, c.get("resources") or {})
    return causes


def env_name_problems(name: str) -> list[str]:
    """apimachinery's IsRelaxedEnvVarName: printable ASCII but '=', and no '.'/'..' prefix."""
    problems = []
    if any(not (" " <= ch <= "~") or ch == "=" for ch in name):
        problems.append(ENV_MSG)
    if name == ".":
        problems.append("must not be '.'")
    elif name == "..":
        problems.append("must not be '..'")
    elif name.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def pod_causes(pod: dict) -> list[Cause]:
    causes = check_metadata(pod.get("metadata") or {}, namespaced=True)
    spec = pod.get("spec") or {}
    volumes: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        vname = vol.get("name") or ""
        if not vname:
            causes.append(required(f"spec.volumes[{i}].name"))
        else:
            causes += check_label(f"spec.volumes[{i}].name", vname)
        volumes.add(vname)
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required("spec.containers"))
    causes += _check_containers("containers", containers, volumes)
    causes += _check_containers("initContainers", spec.get("initContainers") or [], volumes)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported("spec.restartPolicy", policy,
                                    ["Always", "OnFailure", "Never"]))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (1 <= int(deadline) <= 2147483647):
        causes.append(bad("spec.activeDeadlineSeconds", deadline,
                          "must be between 1 and 2147483647, inclusive"))
    from kgahp_sim import gates

    causes += gates.create_causes(pod)
    return causes


def pod_warnings(pod: dict) -> list[str]:
    name = (pod.get("metadata") or {}).get("name") or ""
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if "." in name:
        problems.append("must not contain dots")
    if not problems:
        return []
    return ["metadata.name: this is used in the Pod's hostname, which can result in surprising "
            f"behavior; a DNS label is recommended: [{', '.join(problems)}]"]


def _data_key_causes(data: dict, field: str = "data") -> list[Cause]:
    causes = []
    for key in data:
        if len(key) > 253:
            causes.append(bad(f"{field}[{key}]", key, "must be no more than 253 characters"))
        if not CONFIG_KEY.match(key):
            causes.append(bad(f"{field}[{key}]", key, CONFIG_KEY_MSG))
    return causes


def secret_causes(secret: dict) -> list[Cause]:
    causes = check_metadata(secret.get("metadata") or {}, namespaced=True)
    data = dict(secret.get("data") or {})
    data.update(secret.get("stringData") or {})
    causes += _data_key_causes(data)
    stype = secret.get("type") or "Opaque"
    if stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(required(f"data[{key}]"))
    return causes


_SYSTEM_CLASSES = {name: value for name, value, _ in BUILTIN_PRIORITY_CLASSES}
USER_PRIORITY_MAX = 1_000_000_000


def priority_class_causes(pc: dict) -> list[Cause]:
    causes = check_metadata(pc.get("metadata") or {}, namespaced=False)
    name = (pc.get("metadata") or {}).get("name") or ""
    system = name.startswith("system-")
    if system and _SYSTEM_CLASSES.get(name) != pc.get("value"):
        causes.append(forbidden("metadata.name", "priority class names with 'system-' prefix are "
                                f"reserved for system use only. error: {name} is not a known "
                                "system priority class"))
    value = pc.get("value")
    if not system and isinstance(value, int) and value > USER_PRIORITY_MAX:
        causes.append(forbidden("value", "maximum allowed value of a user defined priority is "
                                f"{USER_PRIORITY_MAX}"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        causes.append(not_supported("preemptionPolicy", policy, ["Never", "PreemptLowerPriority"]))
    return causes


def _causes_for(resource: str, obj: dict) -> list[Cause]:
    if resource == "pods":
        return pod_causes(obj)
    if resource == "secrets":
        return secret_causes(obj)
    if resource == "configmaps":
        return check_metadata(obj.get("metadata") or {}, namespaced=True) + _data_key_causes(
            obj.get("data") or {})
    if resource == "namespaces":
        return check_metadata(obj.get("metadata") or {}, namespaced=False,
                              name_check=check_label)
    if resource == "priorityclasses":
        return priority_class_causes(obj)
    if resource == "jobs":
        from kgahp_sim.jobs import job_causes

        return job_causes(obj)
    return check_metadata(obj.get("metadata") or {}, namespaced=resource != "nodes")


def validate_create(resource: str, obj: dict) -> list[str]:
    """Raise the 422 for an invalid new object; return the Warning texts for a valid one."""
    causes = _causes_for(resource, obj)
    if causes:
        name = (obj.get("metadata") or {}).get("name") or ""
        raise invalid(KIND_OF[resource], name, causes, group=GROUP_OF.get(resource, ""))
    return pod_warnings(obj) if resource == "pods" else []


def _mutable_view(spec: dict) -> dict:
    view = json.loads(json.dumps(spec))
    for key in ("containers", "initContainers"):
        for c in view.get(key) or []:
            c.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds",
                "schedulingGates"):   # gates: removals only, checked in gates.update_causes
        view.pop(key, None)
    return view


def validate_update(resource: str, current: dict, new: dict) -> None:
    name = current["metadata"]["name"]
    causes = [c for c in _causes_for(resource, new) if not c.field.startswith("metadata.name")]
    if resource == "pods":
        old_spec, new_spec = current.get("spec") or {}, new.get("spec") or {}
        if _mutable_view(old_spec) != _mutable_view(new_spec):
            diff = _spec_diff(old_spec, new_spec)
            causes.append(forbidden("spec", POD_UPDATE_MSG + "\n" + diff))
        from kgahp_sim import gates

        causes += gates.update_causes(current, new)
    if resource in ("secrets", "configmaps") and current.get("immutable"):
        for key in ("data", "stringData", "binaryData"):
            if new.get(key) != current.get(key) and not (key == "stringData"
                                                           and not new.get(key)):
                causes.append(forbidden(key, "field is immutable when `immutable` is set"))
        if not new.get("immutable"):
            causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    if resource == "priorityclasses":
        causes = [c for c in causes if c.field != "value"]
        for key in ("value", "preemptionPolicy"):
            if new.get(key) != current.get(key):
                causes.append(forbidden(key, "may not be changed in an update."))
    if resource == "jobs":
        from kgahp_sim.jobs import update_causes

        causes += update_causes(current, new)
    if resource == "secrets":
        old_type = current.get("type") or "Opaque"
        new_type = new.get("type") or "Opaque"
        if old_type != new_type:
            causes.insert(0, bad("type", new_type, "field is immutable"))
    if causes:
        raise invalid(KIND_OF[resource], name, causes, group=GROUP_OF.get(resource, ""))


def _spec_diff(old: dict, new: dict) -> str:
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"- \t{key}: {json.dumps(old.get(key))},")
            lines.append(f"+ \t{key}: {json.dumps(new.get(key))},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def validate_status_update(resource: str, current: dict, new: dict) -> None:
    if resource != "pods":
        return
    causes: list[Cause] = []
    never = (current.get("spec") or {}).get("restartPolicy") == "Never"
    old_states = {s.get("name"): s.get("state") or {}
                  for s in (current.get("status") or {}).get("containerStatuses") or []}
    for i, st in enumerate((new.get("status") or {}).get("containerStatuses") or []):
        before = old_states.get(st.get("name")) or {}
        if never and "terminated" in before and "terminated" not in (st.get("state") or {}):
            causes.append(forbidden(f"status.containerStatuses[{i}].state",
                                    "may not be transitioned to non-terminated state"))
    if causes:
        raise invalid("Pod", current["metadata"]["name"], causes)


# ----- query options ---------------------------------------------------------------------------
def check_list_options(rv: str | None, match: str | None, *, watch: bool) -> None:
    if not match:
        return
    if watch:
        raise options_invalid("ListOptions", "resourceVersionMatch", "FieldValueForbidden",
                              "Forbidden: resourceVersionMatch is forbidden for watch unless "
                              "sendInitialEvents is provided")
    if not rv:
        raise options_invalid("ListOptions", "resourceVersionMatch", "FieldValueForbidden",
                              "Forbidden: resourceVersionMatch is forbidden unless "
                              "resourceVersion is provided")
    if match not in ("Exact", "NotOlderThan"):
        raise options_invalid("ListOptions", "resourceVersionMatch", "FieldValueNotSupported",
                              f'Unsupported value: "{match}": supported values: "Exact", '
                              '"NotOlderThan", ""')


def parse_rv(raw: str | None, *, watch: bool = True) -> int:
    """The numeric resourceVersion; otherwise a list gets v1.36's 400 BadRequest (08h) and a
    watch still the reason-less 500 (08i)."""
    try:
        value = int(raw or "")
        if value < 0:
            raise ValueError(raw)
        return value
    except ValueError as exc:
        text = (f'resourceVersion: Invalid value: "{raw}": strconv.ParseUint: parsing "{raw}": '
                "invalid syntax")
        if watch:
            raise ApiStatusError(500, "", text) from exc
        raise ApiStatusError(400, "BadRequest", "invalid resource version: " + text) from exc


def check_log_options(pod: str, tail: int | None, limit: int | None) -> None:
    causes = []
    if tail is not None and tail < 0:
        causes.append(bad("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(bad("limitBytes", limit, "must be greater than 0"))
    if causes:
        raise invalid("PodLogOptions", pod, causes)
