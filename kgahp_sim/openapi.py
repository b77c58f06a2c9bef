"""OpenAPI v2 (`/openapi/v2`) and v3 (`/openapi/v3`, `/openapi/v3/api/v1`) as a v1.36
kube-apiserver serves them, for the API surface the sim implements, so `kubectl create -f`,
`apply` and `explain` work with validation on.

The documents are the recorded ones (tests/data/k8s-recordings-v1.36/26*: v2, v3 core/v1 and
batch/v1) cut down to the
paths the sim serves and the definitions those reach; groups with no recorded v3 document
(authentication, authorization, scheduling.k8s.io) get one derived from the recorded v2 one.
`python -m kgahp_sim.openapi RECORDINGS` rebuilds them into kgahp_sim/data, and a test checks the
shipped copies are exactly that. kubectl 1.28/1.29 ask for v2 in protobuf, which is not served
(406): they need a 1.30+ kubectl, or --validate=false.
HTTP behaviour follows the same recordings: the v3 index lists each group-version's URL with
`?hash=` (SHA-512 of the document); that URL is answered `Cache-Control: public, immutable`,
a stale hash by a 301 to the current one, an unknown group-version by an empty 404.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

DATA_V2 = "sim-openapi-v2.json.gz"
DATA_V3 = {"api/v1": "sim-openapi-v3-api-v1.json.gz",
           "apis/batch/v1": "sim-openapi-v3-apis-batch-v1.json.gz"}
# Group-versions with no recorded v3 document: derived from the recorded v2 one (v3_from_v2),
# and listed in the index only while the sim's discovery serves the group.
DERIVED_V3 = {f"apis/{group}/v1": f"sim-openapi-v3-apis-{group}-v1.json.gz"
              for group in ("authentication.k8s.io", "authorization.k8s.io",
                            "scheduling.k8s.io")}
# Paths the sim serves (see SimApi._dispatch and discovery.py), as the documents spell them.
_CORE = (r"/api/v1/(?:watch/)?(?:namespaces/\{namespace\}/)?"
         r"(?:pods|secrets|configmaps|events|namespaces|nodes)"
         r"(?:/\{name\}(?:/(?:status|log|binding))?)?")
SERVED_PATHS = re.compile(
    rf"(?:{_CORE}|/api/|/api/v1/|/apis/|/version/"
    r"|/apis/authorization\.k8s\.io/(?:v1/(?:selfsubjectaccessreviews)?)?"
    r"|/apis/authentication\.k8s\.io/(?:v1/(?:selfsubjectreviews)?)?"
    r"|/apis/scheduling\.k8s\.io/(?:v1/(?:(?:watch/)?priorityclasses(?:/\{name\})?)?)?"
    r"|/apis/batch/(?:v1/(?:(?:watch/)?(?:namespaces/\{namespace\}/)?jobs"
    r"(?:/\{name\}(?:/status)?)?)?)?)")
NO_CACHE = {"Cache-Control": "no-cache, private"}
PROTOBUF = "application/com.github.proto-openapi.spec"


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _closure(paths: dict[str, Any], definitions: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The definitions reachable from `paths` through `$ref`s starting with `prefix`."""
    wanted: set[str] = set()
    todo: set[str] = set()
    _refs(paths, todo)
    while todo:
        ref = todo.pop()
        if not ref.startswith(prefix):
            continue
        name = ref[len(prefix):]
        if name in wanted or name not in definitions:
            continue
        wanted.add(name)
        _refs(definitions[name], todo)
    return {name: definitions[name] for name in sorted(wanted)}


def trim_v2(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {p: v for p, v in doc["paths"].items() if SERVED_PATHS.fullmatch(p)}
    out = {k: v for k, v in doc.items() if k not in ("paths", "definitions", "parameters")}
    out["paths"] = paths
    out["parameters"] = _closure(paths, doc.get("parameters") or {}, "#/parameters/")
    out["definitions"] = _closure({"paths": paths, "parameters": out["parameters"]},
                                  doc["definitions"], "#/definitions/")
    return out


def trim_v3(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {p: v for p, v in doc["paths"].items() if SERVED_PATHS.fullmatch(p)}
    components = dict(doc.get("components") or {})
    components["schemas"] = _closure(paths, components.get("schemas") or {},
                                     "#/components/schemas/")
    return {**doc, "paths": paths, "components": components}


def _v3_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/definitions/", "#/components/schemas/")
                    if k == "$ref" and isinstance(v, str) else _v3_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_v3_refs(v) for v in node]
    return node


_ONE_OF = {"io.k8s.apimachinery.pkg.api.resource.Quantity": [{"type": "string"},
                                                              {"type": "number"}],
           "io.k8s.apimachinery.pkg.util.intstr.IntOrString": [{"type": "integer"},
                                                                {"type": "string"}]}


def _v3_schema(node: Any) -> Any:
    """OpenAPI 3.0 ignores a `$ref`'s siblings: a described reference becomes an `allOf`."""
    if isinstance(node, dict):
        out = {k: _v3_schema(v) for k, v in node.items()}
        if "$ref" in out and len(out) > 1:
            ref = out.pop("$ref")
            out = {**{k: v for k, v in out.items() if k == "description"},
                   "allOf": [{"$ref": ref}],
                   **{k: v for k, v in out.items() if k != "description"}}
        return out
    if isinstance(node, list):
        return [_v3_schema(v) for v in node]
    return node


def _v3_parameter(param: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        param = shared[param["$ref"].rsplit("/", 1)[-1]]
    out: dict[str, Any] = {k: param[k] for k in ("name", "in", "description", "required")
                           if k in param}
    schema = {k: param[k] for k in ("type", "uniqueItems", "format", "items") if k in param}
    out["schema"] = _v3_refs(param.get("schema", schema))
    return out


def _v3_operation(op: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in op.items()
           if k not in ("consumes", "produces", "schemes", "parameters", "responses")}
    params = []
    for param in op.get("parameters") or []:
        resolved = shared[param["$ref"].rsplit("/", 1)[-1]] if "$ref" in param else param
        if resolved.get("in") == "body":
            body: dict[str, Any] = {"content": {
                mime: {"schema": _v3_refs(resolved["schema"])}
                for mime in op.get("consumes") or ["*/*"]}}
            if resolved.get("required"):
                body["required"] = True
            out["requestBody"] = body
        else:
            params.append(_v3_parameter(resolved, shared))
    if params:
        out["parameters"] = params
    responses = {}
    for code, answer in (op.get("responses") or {}).items():
        converted = {"description": answer.get("description", "")}
        if "schema" in answer:
            converted["content"] = {mime: {"schema": _v3_refs(answer["schema"])}
                                    for mime in sorted(op.get("produces") or [])}
        responses[code] = converted
    out["responses"] = responses
    ordered: dict[str, Any] = {k: out[k] for k in ("tags", "description", "operationId",
                                                   "parameters", "requestBody", "responses")
                               if k in out}
    return {**ordered, **{k: v for k, v in out.items() if k not in ordered}}


def v3_from_v2(v2: dict[str, Any], group_version: str,
               served: re.Pattern[str] = SERVED_PATHS) -> dict[str, Any]:
    """The v3 document of `group_version` (e.g. "apis/scheduling.k8s.io/v1") built from the
    v2 one as the apiserver builds both from the same routes: body parameters become
    requestBody, parameter types move into `schema`, responses get one entry per media type,
    a described `$ref` becomes an `allOf`. Only field defaults, which v2 does not carry, are
    missing (a test holds this against the recorded v3 documents of core/v1 and batch/v1)."""
    prefix = f"/{group_version}/"
    shared = v2.get("parameters") or {}
    paths: dict[str, Any] = {}
    for path, item in v2["paths"].items():
        if not path.startswith(prefix) or not served.fullmatch(path):
            continue
        converted: dict[str, Any] = {}
        for key, value in item.items():
            if key == "parameters":
                converted[key] = [_v3_parameter(p, shared) for p in value]
            else:
                converted[key] = _v3_operation(value, shared)
        paths[path] = converted
    schemas = _closure(paths, _v3_schema(_v3_refs(v2["definitions"])), "#/components/schemas/")
    parts = group_version.split("/")
    group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
    for name, schema in schemas.items():
        if name in _ONE_OF:           # v2 can only say "string" for these
            schema.pop("type", None)
            schema["oneOf"] = _ONE_OF[name]
        kinds = schema.get("x-kubernetes-group-version-kind")
        if isinstance(kinds, list) and len(kinds) > 1:   # DeleteOptions, WatchEvent: every
            schema["x-kubernetes-group-version-kind"] = [   # group in v2, this one in v3
                k for k in kinds if (k["group"], k["version"]) in (("", "v1"),
                                                                  (group, version))]
    security = {name: {k: scheme[k] for k in ("type", "description", "name", "in") if k in scheme}
                for name, scheme in (v2.get("securityDefinitions") or {}).items()}
    return {"openapi": "3.0.0", "info": v2["info"], "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": security}}


def encode(doc: dict[str, Any]) -> bytes:
    """The bytes served: compact JSON, as the apiserver writes these documents."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class Document:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.hash = hashlib.sha512(body).hexdigest().upper()
        self.etag = f'"{self.hash}"'
        self.gzipped = gzip.compress(body, 6, mtime=0)


@cache
def _document(name: str) -> Document:
    data = resources.files("kgahp_sim").joinpath("data", name).read_bytes()
    return Document(gzip.decompress(data))


def served_v3() -> dict[str, str]:
    """{group-version: data file} of the v3 documents served now."""
    from kgahp_sim import discovery

    out = dict(DATA_V3)
    for gv, name in DERIVED_V3.items():
        if discovery.group_version(gv.split("/")[1]) is not None:
            out[gv] = name
    return out


def v3_index() -> dict[str, Any]:
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_document(f).hash}"}
                      for gv, f in served_v3().items()}}


def _send(request: web.Request, doc: Document, headers: dict[str, str]) -> web.Response:
    accept = request.headers.get("Accept", "")
    if PROTOBUF in accept and "json" not in accept and "*/*" not in accept:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "only application/json is served by this simulated cluster",
                  "reason": "NotAcceptable", "code": 406}
        return web.Response(status=406, body=json.dumps(status).encode(),
                            content_type="application/json", headers=NO_CACHE)
    headers = {**headers, "Etag": doc.etag, "Vary": "Accept",
               "Last-Modified": "Thu, 01 Jan 1970 00:00:00 GMT"}
    if request.headers.get("If-None-Match") == doc.etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=doc.gzipped, content_type="application/json", headers=headers)
    return web.Response(body=doc.body, content_type="application/json", headers=headers)


def serve(request: web.Request, path: str) -> Optional[web.Response]:
    """The answer for an /openapi path, or None when `path` is not one."""
    if path == "/openapi/v2":
        return _send(request, _document(DATA_V2), NO_CACHE)
    if path == "/openapi/v3":
        body = json.dumps(v3_index(), separators=(",", ":")).encode()
        return web.Response(body=body, headers={**NO_CACHE,
                                                "Content-Type": "text/plain; charset=utf-8"})
    if not path.startswith("/openapi/v3/"):
        return None
    group_version = path[len("/openapi/v3/"):]
    name = served_v3().get(group_version)
    if name is None:
        return web.Response(status=404, headers=NO_CACHE)
    doc = _document(name)
    asked = request.query.get("hash")
    if asked is None:
        return _send(request, doc, NO_CACHE)
    if asked != doc.hash:
        return web.Response(status=301, content_type="application/json", headers={
            **NO_CACHE, "Location": f"/openapi/v3/{group_version}?hash={doc.hash}"})
    return _send(request, doc, {"Cache-Control": "public, immutable",
                                "Expires": "Fri, 31 Dec 9999 23:59:59 GMT"})


def build(recordings: Path, out: Path) -> None:
    """Write the trimmed documents from the recorded ones (26b: v3 core/v1, 26d: v2)."""
    sources = {DATA_V2: ("26d-openapi-v2.body.json.gz", trim_v2),
               DATA_V3["api/v1"]: ("26b-openapi-v3-api-v1.body.json.gz", trim_v3),
               DATA_V3["apis/batch/v1"]: ("26c-openapi-v3-apis-batch-v1.body.json.gz",
                                          trim_v3)}
    for name, (source, trim) in sources.items():
        with gzip.open(recordings / source) as handle:
            doc = json.load(handle)
        (out / name).write_bytes(gzip.compress(encode(trim(doc)), 9, mtime=0))
    with gzip.open(recordings / "26d-openapi-v2.body.json.gz") as handle:
        v2 = json.load(handle)
    for group_version, name in DERIVED_V3.items():
        (out / name).write_bytes(gzip.compress(encode(v3_from_v2(v2, group_version)), 9,
                                               mtime=0))


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).resolve().parent / "data")
