"""The OpenAPI 3.1 document, built from the route table: never written by hand.

Each wing gives a prefix, who may call it and its operations; each
operation its models. Every model's JSON Schema comes from pydantic in one
pass (`models_json_schema`), so shared models and their `$defs` land once in
`components/schemas` and every use is a `$ref`. The errors a wing answers
for every route (credentials, readiness) are added here, not repeated on
each operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hookyard_ingest.openapi.operation import Access, Answer, Operation
from hookyard_ingest.openapi.resources import ErrorBody

TITLE = "Hookyard API"
VERSION = "1"
REF = "#/components/schemas/{model}"

#: What callers send, per access; `token` and `public` send nothing.
SECURITY_SCHEMES = {
    "tenantKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant's API key (`hy_...`), shown once when the tenant is made. The console's "
        "session cookie (`POST /console/session`) is accepted instead, with `X-CSRF-Token` on every call "
        "that is not GET or HEAD.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's `HOOKYARD_ADMIN_TOKEN`, or an admin's console session cookie (as for "
        "`tenantKey`).",
    },
}
_SECURITY: dict[Access, list[dict[str, list]]] = {
    Access.tenant: [{"tenantKey": []}],
    Access.admin: [{"adminToken": []}],
}
#: The errors the wing's middlewares answer before a handler runs.
_WING_ERRORS = {
    Access.tenant: (401, 403, 503),
    Access.admin: (401, 403, 503),
    Access.token: (503,),
    Access.public: (),
}
_ERROR_MEANING = {
    400: "The input is wrong: `error.field` names it.",
    401: "No credentials, or wrong ones.",
    403: "Not allowed: the admin API is off, the tenant is disabled, the sender is not on the allow-list, or a "
    "console call came without its `X-CSRF-Token` (`csrf_failed`).",
    404: "No such resource (or not the caller's).",
    409: "A conflict with the resource's state: `error.code` says which.",
    413: "The body is over its limit.",
    415: "A body of a media type this route does not read: `error.accepted` lists those it does.",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: "Starting, or a dependency is unavailable: retry after `Retry-After` seconds.",
}
_PATH_PARAM = re.compile(r"{(\w+)}")


class Routed(Protocol):
    """A wing as the document sees it."""

    @property
    def prefix(self) -> str: ...
    @property
    def access(self) -> Access: ...
    @property
    def operations(self) -> Sequence[Operation]: ...


def build(wings: Iterable[Routed], server: str = "/") -> dict[str, Any]:
    listed = [(wing, op) for wing in wings for op in wing.operations]
    schemas, refs = _schemas(listed)
    paths: dict[str, dict] = {}
    for wing, op in listed:
        item = paths.setdefault(wing.prefix + op.path, {})
        item[op.method.lower()] = _operation(wing, op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": "Receive, deliver and watch webhooks."},
        "servers": [{"url": server}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _models(op: Operation) -> Iterable[tuple[type[BaseModel], JsonSchemaMode]]:
    if op.body is not None:
        yield op.body, "validation"
    for answer in op.answers.values():
        if isinstance(answer, type):
            yield answer, "serialization"
        elif answer is not None:
            yield from ((media["schema"], "serialization") for media in answer.values() if _is_model(media))


def _schemas(listed: Sequence[tuple[Routed, Operation]]) -> tuple[dict, dict]:
    """Every model's schema in `components/schemas`, and the `$ref` each (model, mode) is shown by."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for _, op in listed:
        wanted |= dict.fromkeys(_models(op))
    refs, top = models_json_schema(list(wanted), ref_template=REF)
    return top.get("$defs", {}), refs


def _operation(wing: Routed, op: Operation, refs: Mapping) -> dict[str, Any]:
    path = wing.prefix + op.path
    item: dict[str, Any] = {
        "operationId": _operation_id(op.method, path),
        "summary": op.summary,
        "tags": [op.tag or wing.access.value],
        "security": _SECURITY.get(wing.access, []),
        "parameters": _parameters(path, op.query),
        "responses": _responses(wing, op, refs),
    }
    if op.description:
        item["description"] = op.description
    if op.deprecated:
        item["deprecated"] = True
    if op.body is not None:
        media: dict[str, Any] = {"schema": refs[(op.body, "validation")]}
        if op.example is not None:
            media["example"] = dict(op.example)
        item["requestBody"] = {"required": False, "content": {"application/json": media}}
    elif op.body_media:
        item["requestBody"] = {"required": False, "content": dict(op.body_media)}
    return item


def _operation_id(method: str, path: str) -> str:
    """`post_v1_endpoints_endpoint_id_rotate_secret`: unique, and a generated client's function name."""
    return "_".join([method.lower(), *re.findall(r"[a-z0-9]+", path.lower())])


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
    ]
    if query is not None:
        schema = query.model_json_schema(by_alias=True)
        assert "$defs" not in schema, f"{query.__name__}: query parameters must be plain values"
        for name, prop in schema["properties"].items():
            description = prop.pop("description", "")
            prop.pop("title", None)
            param = {"name": name, "in": "query", "required": name in schema.get("required", ()), "schema": prop}
            params.append({**param, "description": description} if description else param)
    return params


def _responses(wing: Routed, op: Operation, refs: Mapping) -> dict[str, Any]:
    responses = {str(status): _answer(status, answer, refs) for status, answer in op.answers.items()}
    errors = set(op.errors) | set(_WING_ERRORS[wing.access])
    if op.body is not None:
        errors |= {400, 413}
    if op.query is not None:
        errors.add(400)
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _ERROR_MEANING.get(status, HTTPStatus(status).phrase),
            "content": error,
        }
    return responses


def _answer(status: int, answer: Answer, refs: Mapping) -> dict[str, Any]:
    described: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if isinstance(answer, type):
        described["content"] = {"application/json": {"schema": refs[(answer, "serialization")]}}
    elif answer is not None:
        described["content"] = {
            name: {"schema": refs[(media["schema"], "serialization")]} if _is_model(media) else media
            for name, media in answer.items()
        }
    return described


def _is_model(media: Mapping[str, Any]) -> bool:
    """A media type whose schema is given as a model (a JSON answer beside a provider's text one)."""
    schema = media.get("schema")
    return isinstance(schema, type) and issubclass(schema, BaseModel)
