"""Small HTTP/JSON helpers shared by the sim API's handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kgahp_sim.store import ApiStatusError

BASE_HEADERS = {"Cache-Control": "no-cache, private"}


@dataclass
class Route:
    """What a request addresses, as the apiserver's RequestInfo resolver sees it."""
    resource: str = ""
    namespace: str | None = None
    name: str = ""
    subresource: str = ""
    group: str = ""
    non_resource: bool = False


def parse_route(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return Route(non_resource=True)
    if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
        rest = parts[2:]
        group = ""
    elif parts[0] == "apis" and len(parts) >= 4:
        rest = parts[3:]
        group = parts[1]
    else:
        return Route(non_resource=True)
    route = Route(group=group)
    if rest[0] == "namespaces" and len(rest) >= 3:
        route.namespace = rest[1]
        rest = rest[2:]
    route.resource = rest[0]
    if len(rest) > 1:
        route.name = rest[1]
    if len(rest) > 2:
        route.subresource = rest[2]
    if len(rest) > 3:
        return None
    return route


def dump(obj: Any, pretty: bool = False) -> bytes:
    """JSON as the apiserver writes it: compact plus a newline, or indented without one."""
    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=False).encode()
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def int_param(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiStatusError(400, "BadRequest",
                             f'strconv.ParseInt: parsing "{raw}": invalid syntax') from exc
