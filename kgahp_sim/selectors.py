"""Label and field selectors with the apiserver's parse rules and error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_SPECIAL = "!=(),<> \t\n"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """str() is the message of the apiserver's 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number = int(value or "")
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


def _tokens(text: str) -> list[str]:
    """Lexer of k8s.io/apimachinery/pkg/labels: identifiers, operators and punctuation."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\n":
            i += 1
            continue
        if text.startswith(("==", "!="), i):
            out.append(text[i : i + 2])
            i += 2
            continue
        if ch in _SPECIAL:
            out.append(ch)
            i += 1
            continue
        start = i
        while i < len(text) and text[i] not in _SPECIAL:
            i += 1
        out.append(text[start:i])
    return out


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in ("!", "=", "==", "!=", "(", ")", ",", "<", ">")


def _check_value(key: str, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: values[0][{key}]: Invalid value: \"{value}\": "
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )


def parse_label_selector(text: str) -> list[Requirement]:
    tokens = _tokens(text)
    pos = 0
    reqs: list[Requirement] = []

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    while pos < len(tokens):
        negate = False
        if peek() == "!":
            negate = True
            pos += 1
        key = peek()
        if not _is_identifier(key) or key is None:
            raise SelectorError(
                f"unable to parse requirement: found '{key or ''}', expected: identifier"
            )
        pos += 1
        nxt = peek()
        if negate:
            reqs.append(Requirement(key, "!"))
        elif nxt is None or nxt == ",":
            reqs.append(Requirement(key, "exists"))
        elif nxt in ("=", "==", "!="):
            pos += 1
            value = peek()
            if value is None or value == ",":
                value = ""
            elif _is_identifier(value):
                pos += 1
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{value}', expected: identifier"
                )
            _check_value(key, value)
            reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
        elif nxt in ("in", "notin"):
            pos += 1
            if peek() != "(":
                raise SelectorError(
                    f"unable to parse requirement: found '{peek() or ''}' expected: '('"
                )
            pos += 1
            values: list[str] = []
            while True:
                tok = peek()
                if tok == ")":
                    pos += 1
                    break
                if tok == ",":
                    pos += 1
                    continue
                if not _is_identifier(tok) or tok is None:
                    raise SelectorError(
                        f"unable to parse requirement: found '{tok or ''}', expected: ',', ')' "
                        "or identifier"
                    )
                _check_value(key, tok)
                values.append(tok)
                pos += 1
            reqs.append(Requirement(key, nxt, tuple(values)))
        elif nxt in ("<", ">"):
            pos += 1
            bound = peek() or ""
            if not bound.lstrip("-").isdigit():
                raise SelectorError(
                    f"unable to parse requirement: found '{bound}', expected: integer"
                )
            pos += 1
            reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (bound,)))
        else:
            raise SelectorError(
                f"unable to parse requirement: found '{nxt}', expected: "
                "'=', '!=', '==', 'in', notin'"
            )
        tok = peek()
        if tok is None:
            break
        if tok != ",":
            raise SelectorError(f"found '{tok}', expected: ',' or 'end of string'")
        pos += 1
    return reqs


def label_matcher(text: str) -> Callable[[dict], bool]:
    """A predicate over whole objects; raises SelectorError for a bad selector."""
    reqs = parse_label_selector(text)
    if not reqs:
        return lambda obj: True

    def match(obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in reqs)

    return match


# Field labels each resource supports (the apiserver answers 400 for any other).
_FIELDS: dict[str, dict[str, Callable[[dict], str]]] = {}


def _path(*keys: str) -> Callable[[dict], str]:
    def get(obj: dict) -> str:
        cur: object = obj
        for k in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(k)
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return "" if cur is None else str(cur)

    return get


_META = {"metadata.name": _path("metadata", "name"),
         "metadata.namespace": _path("metadata", "namespace")}
_FIELDS["pods"] = {
    **_META,
    "spec.nodeName": _path("spec", "nodeName"),
    "spec.restartPolicy": _path("spec", "restartPolicy"),
    "spec.schedulerName": _path("spec", "schedulerName"),
    "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    "spec.hostNetwork": _path("spec", "hostNetwork"),
    "status.phase": _path("status", "phase"),
    "status.podIP": _path("status", "podIP"),
    "status.nominatedNodeName": _path("status", "nominatedNodeName"),
}
_FIELDS["events"] = {
    **_META,
    **{f"involvedObject.{k}": _path("involvedObject", k)
       for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}
_FIELDS["secrets"] = {**_META, "type": _path("type")}
_FIELDS["configmaps"] = dict(_META)
_FIELDS["namespaces"] = {**_META, "status.phase": _path("status", "phase")}
_FIELDS["nodes"] = {**_META, "spec.unschedulable": _path("spec", "unschedulable")}


def field_matcher(resource: str, text: str) -> Callable[[dict], bool]:
    """A predicate for a fieldSelector; raises SelectorError as the apiserver would."""
    terms: list[tuple[Callable[[dict], str], bool, str]] = []
    supported = _FIELDS.get(resource, _META)
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                field, value = term.split(op, 1)
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field = field.strip()
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        terms.append((supported[field], op == "!=", value.strip()))
    if not terms:
        return lambda obj: True

    def match(obj: dict) -> bool:
        return all((get(obj) != value) if negate else (get(obj) == value)
                   for get, negate, value in terms)

    return match
