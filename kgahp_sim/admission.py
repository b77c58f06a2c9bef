"""The admission a kube-apiserver v1.36 runs by default, as far as pods and namespaces go.

- PodSecurity: the namespace labels ``pod-security.kubernetes.io/{enforce,warn,audit}`` (with
  ``-version``) choose a Pod Security Standards level; a pod create that breaks the enforce
  level is refused (403, every failing rule named), one that breaks the warn level gets a
  ``Warning`` header, audit only reaches the audit log (none here). Namespace writes with a bad
  level or version are refused (422); tightening ``enforce`` warns about the existing pods.
  Checks implemented: the baseline ones for privileged containers, host namespaces, hostPath
  volumes, host ports, added capabilities, seccomp, AppArmor annotations, SELinux options,
  /proc mount and sysctls; the restricted ones for privilege escalation, capabilities, volume
  types, runAsNonRoot, runAsUser and seccomp. Not modelled: the AppArmor profile field, Windows
  host process and host probes/lifecycle hooks. Failures are listed in check ID order, which is
  what the recordings show for failures of one level; the order of a mix of baseline and
  restricted failures is not recorded.
- Priority: ``spec.priorityClassName`` is resolved to ``spec.priority`` and
  ``preemptionPolicy`` (a missing class or a contradicting priority is a 403); without a name
  the ``globalDefault`` class applies, else priority 0.

Messages, ordering and status bodies follow tests/data/k8s-recordings-v1.36 (20*, 21*).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

from kgahp_sim.store import ApiStatusError, Store
from kgahp_sim.validation import Cause, bad, invalid

LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LEVELS = ("privileged", "baseline", "restricted")
_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


# ----- PodSecurity: policy from namespace labels -------------------------------------------------
@dataclass(frozen=True)
class LevelVersion:
    level: str = "privileged"
    version: Optional[int] = None          # minor version of 1.x; None = latest

    def __str__(self) -> str:
        return f"{self.level}:{'latest' if self.version is None else f'v1.{self.version}'}"


def policy_of(labels: dict[str, str]) -> tuple[dict[str, LevelVersion], list[Cause]]:
    """The enforce/audit/warn policy and the label problems (pod-security-admission's rules:
    a bad enforce level fails closed to restricted, a bad audit or warn level fails open)."""
    policy: dict[str, LevelVersion] = {}
    causes: list[Cause] = []
    for mode in MODES:
        level, version = "privileged", None
        key = LABEL_PREFIX + mode
        if key in labels:
            level = labels[key]
            if level not in LEVELS:
                causes.append(bad(f"metadata.labels[{key}]", level,
                                  "must be one of " + ", ".join(LEVELS)))
                level = "restricted" if mode == "enforce" else "privileged"
        vkey = key + "-version"
        if vkey in labels:
            raw = labels[vkey]
            match = _VERSION.match(raw)
            if match:
                version = int(match.group(1))
            elif raw != "latest":
                causes.append(bad(f"metadata.labels[{vkey}]", raw,
                                  'must be "latest" or "v1.x"'))
        policy[mode] = LevelVersion(level, version)
    return policy, causes


# ----- PodSecurity: the checks ----------------------------------------------------------------
Result = Optional[tuple[str, str]]          # (forbidden reason, detail) or None when allowed
_Spec = dict[str, Any]


def _containers(spec: _Spec) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _ctx(obj: dict[str, Any]) -> dict[str, Any]:
    value = obj.get("securityContext")
    return value if isinstance(value, dict) else {}


def _quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _plural(one: str, many: str, count: int) -> str:
    return one if count == 1 else many


def _who(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_quote(names)}"


def _allow_privilege_escalation(_meta: dict[str, Any], spec: _Spec) -> Result:
    bad_names = [c.get("name", "") for c in _containers(spec)
                 if _ctx(c).get("allowPrivilegeEscalation") is not False]
    if bad_names:
        return ("allowPrivilegeEscalation != false",
                f"{_who(bad_names)} must set securityContext.allowPrivilegeEscalation=false")
    return None


_DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def _added(container: dict[str, Any]) -> list[str]:
    caps = _ctx(container).get("capabilities")
    return [str(c) for c in (caps.get("add") or [])] if isinstance(caps, dict) else []


def _capabilities_baseline(_meta: dict[str, Any], spec: _Spec) -> Result:
    bad_names, extra = [], set()
    for c in _containers(spec):
        wrong = [cap for cap in _added(c) if cap not in _DEFAULT_CAPABILITIES]
        if wrong:
            bad_names.append(c.get("name", ""))
            extra.update(wrong)
    if bad_names:
        return ("non-default capabilities", f"{_who(bad_names)} must not include "
                f"{_quote(sorted(extra))} in securityContext.capabilities.add")
    return None


def _capabilities_restricted(_meta: dict[str, Any], spec: _Spec) -> Result:
    missing, adding, extra = [], [], set()
    for c in _containers(spec):
        caps = _ctx(c).get("capabilities")
        if not isinstance(caps, dict) or "ALL" not in (caps.get("drop") or []):
            missing.append(c.get("name", ""))
        wrong = [cap for cap in _added(c) if cap != "NET_BIND_SERVICE"]
        if wrong:
            adding.append(c.get("name", ""))
            extra.update(wrong)
    details = []
    if missing:
        details.append(f'{_who(missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_who(adding)} must not include {_quote(sorted(extra))} in "
                       "securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _host_namespaces(_meta: dict[str, Any], spec: _Spec) -> Result:
    used = sorted(k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True)
    return ("host namespaces", ", ".join(f"{k}=true" for k in used)) if used else None


def _volumes(spec: _Spec) -> list[dict[str, Any]]:
    return [v for v in spec.get("volumes") or [] if isinstance(v, dict)]


def _host_path_volumes(_meta: dict[str, Any], spec: _Spec) -> Result:
    names = [v.get("name", "") for v in _volumes(spec) if v.get("hostPath") is not None]
    if names:
        return ("hostPath volumes", f"{_plural('volume', 'volumes', len(names))} {_quote(names)}")
    return None


def _host_ports(_meta: dict[str, Any], spec: _Spec) -> Result:
    bad_names: list[str] = []
    ports: set[str] = set()
    for c in _containers(spec):
        used = [int(p.get("hostPort") or 0) for p in c.get("ports") or [] if isinstance(p, dict)]
        used = [p for p in used if p]
        if used:
            bad_names.append(c.get("name", ""))
            ports.update(str(p) for p in used)
    if bad_names:
        return ("hostPort", f"{_who(bad_names)} {_plural('uses', 'use', len(bad_names))} "
                f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")
    return None


def _privileged(_meta: dict[str, Any], spec: _Spec) -> Result:
    bad_names = [c.get("name", "") for c in _containers(spec) if _ctx(c).get("privileged") is True]
    if bad_names:
        return ("privileged", f"{_who(bad_names)} must not set securityContext.privileged=true")
    return None


_ALLOWED_VOLUME_TYPES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                   "persistentVolumeClaim", "projected", "secret"})


def _restricted_volumes(_meta: dict[str, Any], spec: _Spec) -> Result:
    names = sorted({v.get("name", "") for v in _volumes(spec)
                    if not any(k in _ALLOWED_VOLUME_TYPES for k in v if k != "name")})
    if names:
        return ("restricted volume types",
                "volumes [" + " ".join(f'"{n}"' for n in names) + "] have restricted types")
    return None


def _user_namespaced(spec: _Spec) -> bool:
    return spec.get("hostUsers") is False


def _setters(spec: _Spec, is_bad: Callable[[dict[str, Any]], bool],
             unset: Callable[[dict[str, Any]], bool]) -> tuple[list[str], list[str]]:
    """(explicit bad setters incl. "pod", containers that rely on an unset pod value)."""
    pod_ctx = _ctx(spec)
    setters = ["pod"] if is_bad(pod_ctx) else []
    explicit, implicit = [], []
    pod_ok = not unset(pod_ctx) and not is_bad(pod_ctx)
    for c in _containers(spec):
        ctx = _ctx(c)
        if not unset(ctx):
            if is_bad(ctx):
                explicit.append(c.get("name", ""))
        elif not pod_ok:
            implicit.append(c.get("name", ""))
    if explicit:
        setters.append(_who(explicit))
    return setters, implicit


def _run_as_non_root(_meta: dict[str, Any], spec: _Spec) -> Result:
    if _user_namespaced(spec):
        return None
    setters, implicit = _setters(spec, lambda ctx: ctx.get("runAsNonRoot") is False,
                                 lambda ctx: ctx.get("runAsNonRoot") is None)
    if setters:
        return ("runAsNonRoot != true",
                f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true",
                f"pod or {_who(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def _run_as_user(_meta: dict[str, Any], spec: _Spec) -> Result:
    if _user_namespaced(spec):
        return None
    setters, _ = _setters(spec, lambda ctx: ctx.get("runAsUser") == 0,
                          lambda ctx: ctx.get("runAsUser") is None)
    if setters:
        return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return None


def _seccomp_type(ctx: dict[str, Any]) -> Any:
    profile = ctx.get("seccompProfile")
    return profile.get("type") if isinstance(profile, dict) else None


def _seccomp_bad(ctx: dict[str, Any]) -> bool:
    return isinstance(ctx.get("seccompProfile"), dict) and _seccomp_type(ctx) not in (
        "RuntimeDefault", "Localhost")


def _seccomp_values(spec: _Spec) -> str:
    values = {str(_seccomp_type(ctx)) for ctx in [_ctx(spec)] + [_ctx(c) for c in _containers(
        spec)] if _seccomp_bad(ctx)}
    return _quote(sorted(values))


def _seccomp_baseline(_meta: dict[str, Any], spec: _Spec) -> Result:
    setters, _ = _setters(spec, _seccomp_bad, lambda ctx: ctx.get("seccompProfile") is None)
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set "
                f"securityContext.seccompProfile.type to {_seccomp_values(spec)}")
    return None


def _seccomp_restricted(meta: dict[str, Any], spec: _Spec) -> Result:
    found = _seccomp_baseline(meta, spec)
    if found:
        return found
    _, implicit = _setters(spec, _seccomp_bad, lambda ctx: ctx.get("seccompProfile") is None)
    if implicit:
        return ("seccompProfile", f"pod or {_who(implicit)} must set "
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


def _app_armor(meta: dict[str, Any], _spec: _Spec) -> Result:
    prefix = "container.apparmor.security.beta.kubernetes.io/"
    bad_values = sorted(
        f"{k}={_go_quote(str(v))}" for k, v in (meta.get("annotations") or {}).items()
        if k.startswith(prefix) and v and v != "runtime/default"
        and not str(v).startswith("localhost/"))
    if bad_values:
        return (_plural("forbidden AppArmor profile", "forbidden AppArmor profiles",
                        len(bad_values)), ", ".join(bad_values))
    return None


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _proc_mount(_meta: dict[str, Any], spec: _Spec) -> Result:
    if _user_namespaced(spec):
        return None
    bad_names, kinds = [], set()
    for c in _containers(spec):
        mount = _ctx(c).get("procMount")
        if mount is not None and mount != "Default":
            bad_names.append(c.get("name", ""))
            kinds.add(str(mount))
    if bad_names:
        return ("procMount", f"{_who(bad_names)} must not set securityContext.procMount to "
                f"{_quote(sorted(kinds))}")
    return None


_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})


def _se_linux(_meta: dict[str, Any], spec: _Spec) -> Result:
    bad_types: set[str] = set()
    set_user = set_role = False

    def valid(opts: Any) -> bool:
        nonlocal set_user, set_role
        if not isinstance(opts, dict):
            return True
        ok = True
        if str(opts.get("type") or "") not in _SELINUX_TYPES:
            ok = False
            bad_types.add(str(opts.get("type")))
        if opts.get("user"):
            ok, set_user = False, True
        if opts.get("role"):
            ok, set_role = False, True
        return ok

    setters = [] if valid(_ctx(spec).get("seLinuxOptions")) else ["pod"]
    bad_names = [c.get("name", "") for c in _containers(spec)
                 if not valid(_ctx(c).get("seLinuxOptions"))]
    if bad_names:
        setters.append(_who(bad_names))
    if not setters:
        return None
    data = []
    if bad_types:   # as upstream: user/role are named only next to a bad type
        data.append(f"{_plural('type', 'types', len(bad_types))} {_quote(sorted(bad_types))}")
        if set_user:
            data.append("user may not be set")
        if set_role:
            data.append("role may not be set")
    return ("seLinuxOptions", f"{' and '.join(setters)} set forbidden "
            f"securityContext.seLinuxOptions: {'; '.join(data)}")


_SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                           "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                           "net.ipv4.ip_unprivileged_port_start"})


def _sysctls(_meta: dict[str, Any], spec: _Spec) -> Result:
    names = [str(s.get("name")) for s in _ctx(spec).get("sysctls") or []
             if isinstance(s, dict) and s.get("name") not in _SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(names)) if names else None


@dataclass(frozen=True)
class Check:
    id: str
    level: str            # baseline | restricted
    run: Callable[[dict[str, Any], _Spec], Result]
    overlap: bool = False  # a baseline check a restricted one replaces
    since: int = 0         # the first policy version (1.x) it belongs to


# In ID order, which is the order the apiserver lists failures in (20b, 20f3).
CHECKS = (
    Check("allowPrivilegeEscalation", "restricted", _allow_privilege_escalation, since=8),
    Check("appArmorProfile", "baseline", _app_armor),
    Check("capabilities_baseline", "baseline", _capabilities_baseline, overlap=True),
    Check("capabilities_restricted", "restricted", _capabilities_restricted, since=22),
    Check("hostNamespaces", "baseline", _host_namespaces),
    Check("hostPathVolumes", "baseline", _host_path_volumes, overlap=True),
    Check("hostPorts", "baseline", _host_ports),
    Check("privileged", "baseline", _privileged),
    Check("procMount", "baseline", _proc_mount),
    Check("restrictedVolumes", "restricted", _restricted_volumes),
    Check("runAsNonRoot", "restricted", _run_as_non_root),
    Check("runAsUser", "restricted", _run_as_user, since=23),
    Check("seLinuxOptions", "baseline", _se_linux),
    Check("seccompProfile_baseline", "baseline", _seccomp_baseline, overlap=True, since=19),
    Check("seccompProfile_restricted", "restricted", _seccomp_restricted, since=19),
    Check("sysctls", "baseline", _sysctls),
)


def evaluate(policy: LevelVersion, meta: dict[str, Any], spec: _Spec) -> list[tuple[str, str]]:
    """The (reason, detail) of every check the pod fails at this level and version."""
    if policy.level == "privileged":
        return []
    version = 10_000 if policy.version is None else policy.version
    failures = []
    for check in CHECKS:
        if check.since > version:
            continue
        if check.level == "restricted" and policy.level != "restricted":
            continue
        if check.overlap and policy.level == "restricted":
            continue
        found = check.run(meta, spec)
        if found:
            failures.append(found)
    return failures


def detail(failures: list[tuple[str, str]]) -> str:
    return ", ".join(f"{reason} ({text})" if text else reason for reason, text in failures)


def _namespace_policy(store: Store, namespace: str | None) -> dict[str, LevelVersion] | None:
    ns = store.peek("namespaces", None, namespace or "")
    if ns is None:
        return None
    return policy_of((ns.get("metadata") or {}).get("labels") or {})[0]


def pod_security(store: Store, namespace: str | None, pod: dict[str, Any]) -> list[str]:
    """Raise the enforce 403; return the warn-level Warning texts."""
    policy = _namespace_policy(store, namespace)
    if policy is None:
        return []          # the namespace check that follows answers 404
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    failures = evaluate(policy["enforce"], meta, spec)
    if failures:
        name = meta.get("name") or ""
        raise ApiStatusError(
            403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity '
            f'"{policy["enforce"]}": {detail(failures)}', {"name": name, "kind": "pods"})
    warned = evaluate(policy["warn"], meta, spec)
    if warned:
        return [f'would violate PodSecurity "{policy["warn"]}": {detail(warned)}']
    return []


def _images(pod: dict[str, Any]) -> list[Any]:
    return [c.get("image") for c in _containers(pod.get("spec") or {})]


def namespace_update(store: Store, current: dict[str, Any] | None,
                     new: dict[str, Any]) -> list[str]:
    """422 for bad labels (on create, or when they changed); warnings about existing pods
    when the enforce level gets stricter."""
    labels = (new.get("metadata") or {}).get("labels") or {}
    policy, causes = policy_of(labels)
    name = (new.get("metadata") or {}).get("name") or ""
    old_policy: dict[str, LevelVersion] | None = None
    if current is not None:
        old_policy, old_causes = policy_of((current.get("metadata") or {}).get("labels") or {})
        if [c.message for c in causes] == [c.message for c in old_causes]:
            causes = []
    if causes:
        raise invalid("Namespace", name, causes)
    if old_policy is None:
        return []
    enforce, before = policy["enforce"], old_policy["enforce"]
    if enforce == before or enforce.level == "privileged":
        return []
    if enforce.version == before.version and LEVELS.index(enforce.level) <= LEVELS.index(
            before.level):
        return []
    counts: dict[str, list[str]] = {}
    for pod in store.scan("pods", name):
        failures = evaluate(enforce, pod.get("metadata") or {}, pod.get("spec") or {})
        if failures:
            counts.setdefault(", ".join(r for r, _ in failures), []).append(
                pod["metadata"]["name"])
    if not counts:
        return []
    lines = []
    for reasons, pods in counts.items():
        first, others = min(pods), len(pods) - 1
        who = first if not others else (
            f"{first} (and 1 other pod)" if others == 1 else f"{first} (and {others} other pods)")
        lines.append(f"{who}: {reasons}")
    return [f'existing pods in namespace "{name}" violate the new PodSecurity enforce level '
            f'"{enforce}"', *sorted(lines)]


def pod_update(store: Store, namespace: str | None, current: dict[str, Any],
               new: dict[str, Any]) -> list[str]:
    """Only a change of images is significant to PodSecurity (20i: a label change is not)."""
    if _images(current) == _images(new):
        return []
    return pod_security(store, namespace, new)


# ----- Priority --------------------------------------------------------------------------------
def priority(store: Store, pod: dict[str, Any]) -> None:
    """Fill spec.priority/preemptionPolicy from the pod's PriorityClass (or the global default)."""
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    name = (pod.get("metadata") or {}).get("name") or ""
    class_name = spec.get("priorityClassName")
    value, preemption = 0, None
    if not class_name:
        for pc in store.scan("priorityclasses", None):
            if pc.get("globalDefault"):
                class_name, value = pc["metadata"]["name"], int(pc.get("value", 0))
                preemption = pc.get("preemptionPolicy")
                spec["priorityClassName"] = class_name
                break
    else:
        found = store.peek("priorityclasses", None, str(class_name))
        if found is None:
            raise ApiStatusError(403, "Forbidden", f'pods "{name}" is forbidden: no PriorityClass '
                                 f"with name {class_name} was found",
                                 {"name": name, "kind": "pods"})
        value, preemption = int(found.get("value", 0)), found.get("preemptionPolicy")
    given = spec.get("priority")
    if given is not None and given != value:
        raise ApiStatusError(
            403, "Forbidden", f'pods "{name}" is forbidden: the integer value of priority '
            f"({given}) must not be provided in pod spec; priority admission controller computed "
            f"{value} from the given PriorityClass name", {"name": name, "kind": "pods"})
    spec["priority"] = value
    if preemption is not None:
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != preemption:
            raise ApiStatusError(
                403, "Forbidden", f'pods "{name}" is forbidden: the string value of '
                f"PreemptionPolicy ({given_policy}) must not be provided in pod spec; priority "
                f"admission controller computed {preemption} from the given PriorityClass name",
                {"name": name, "kind": "pods"})
        spec["preemptionPolicy"] = preemption


# ----- the entry points the API calls ------------------------------------------------------------
def admit_create(store: Store, resource: str, namespace: str | None,
                 obj: dict[str, Any]) -> Callable[[], list[str]]:
    """Mutating admission now (Priority); returns the validating step (PodSecurity, namespace
    labels), which the API runs after field validation, as the apiserver orders them."""
    if resource == "pods" and isinstance(obj, dict):
        if store.peek("namespaces", None, namespace or "") is not None:
            priority(store, obj)
        return lambda: pod_security(store, namespace, obj)
    if resource == "namespaces" and isinstance(obj, dict):
        return lambda: namespace_update(store, None, obj)
    return list


def admit_update(store: Store, resource: str, namespace: str | None, subresource: str,
                 current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Validating admission of an update; returns Warning texts."""
    if subresource:
        return []
    if resource == "namespaces":
        return namespace_update(store, current, new)
    if resource == "pods":
        return pod_update(store, namespace, current, new)
    return []
