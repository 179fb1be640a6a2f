"""OpenAPI: the envelope around every response, the exact error answers, the headers, the key schemes.

The schema is a product (clients are generated from it), so each operation says exactly which
error codes it can answer with, under which status, and which headers come back:

- every operation: ``internal_error`` 500 and ``not_acceptable`` 406 (an ``Accept`` without JSON);
- authenticated ones: ``authentication_error`` 401, ``authorization_error`` 403 (scope, suspended
  tenant), ``rate_limit_exceeded`` 429 with ``Retry-After``;
- with an id in the path: ``not_found`` 404 (another tenant's object is not found too);
- with a JSON body: ``bad_request`` 400, ``payload_too_large`` 413, ``unsupported_media_type`` 415,
  ``validation_error`` 422; with query parameters: ``validation_error`` 422;
- plus what the view declares with :func:`raises` (``conflict``, ``quota_exceeded``, ...).

drf-spectacular's response hook (``_get_response_bodies``) is private API; the schema snapshot
test (tests/api/test_schema_snapshot.py) catches a release that changes what it produces.
"""

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import uritemplate
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from config.api import errors

PAGINATION_PARAMETERS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                     description="Items per page, 1-100 (default 20)."),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0, "default": 0},
                     description="Items to skip (default 0)."),
]

# Fixed values so that the generated schema (and docs/openapi.yaml) is the same on every run.
EXAMPLE_META = {"request_id": "req_4f1c2a9e8b7d6c5b4a3f2e1d", "timestamp": "2026-05-04T09:30:00.000Z"}

_META = {
    "type": "object",
    "required": ["request_id", "timestamp"],
    "properties": {
        "request_id": {"type": "string", "description": "Also sent as the X-Request-Id header.",
                       "example": EXAMPLE_META["request_id"]},
        "timestamp": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."},
    },
}
_API_ERROR = {
    "type": "object",
    "required": ["code", "message", "status", "details"],
    "properties": {
        "code": {"type": "string", "example": "validation_error",
                 "description": "Stable machine-readable code; each operation lists the ones it can answer."},
        "message": {"type": "string", "description": "Human-readable; may change between releases."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "details": {"type": "object", "additionalProperties": {},
                    "description": "For validation errors: field name (dotted for nested fields) to messages."},
    },
}
_ERROR_ENVELOPE = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"type": "boolean", "description": "Always false on an error."},
        "error": {"$ref": "#/components/schemas/ApiError"},
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
}

_HEADER_REQUEST_ID = {
    "schema": {"type": "string"}, "required": True,
    "description": "Echoes meta.request_id (a well-formed X-Request-Id sent by the client is kept).",
}
_HEADERS_RATE = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed per minute for this key."},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in the current minute."},
    "X-RateLimit-Reset": {"schema": {"type": "integer"},
                          "description": "Epoch seconds when the window resets."},
}
_HEADER_RETRY_AFTER = {"schema": {"type": "integer"},
                       "description": "Seconds to wait (rate_limit_exceeded only; a quota resets monthly)."}
_HEADER_REPLAY = {"schema": {"type": "string", "enum": ["true"]},
                  "description": "Present when this is the stored response of an earlier request with the "
                                 "same Idempotency-Key and body."}

def _component_name(header: str) -> str:
    return header.removeprefix("X-").replace("-", "")  # X-RateLimit-Limit -> RateLimitLimit


_SUCCESS_HEADERS = {
    "RequestId": _HEADER_REQUEST_ID,
    **{_component_name(name): {**header, "required": True} for name, header in _HEADERS_RATE.items()},
    "IdempotentReplay": _HEADER_REPLAY,
}


def _header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


_RESPONSE_NAMES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 406: "NotAcceptable",
                   409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable",
                   429: "TooManyRequests", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}
_DEFAULT_ERRORS = {c.status: [c] for c in (
    errors.BadRequest, errors.AuthenticationError, errors.AuthorizationError, errors.NotFound, errors.NotAcceptable,
    errors.Conflict, errors.PayloadTooLarge, errors.UnsupportedMediaType, errors.ValidationError,
    errors.RateLimitExceeded, errors.ApplicationError)}

_STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 406: "Not acceptable",
                409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
                422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
                502: "Bad gateway", 503: "Service unavailable"}

# A realistic ``details`` for the codes whose details carry something.
_EXAMPLE_DETAILS: dict[str, dict] = {
    "validation_error": {"to": ["At least one recipient is required."]},
    "quota_exceeded": {"quota": 10000, "used": 10000},
    "domain_not_verified": {"from": ["acme.com is not verified."]},
    "template_not_found": {"template_id": ["No template named 'welcome'."]},
    "invalid_variables": {"variables": ["'user_name' is undefined."]},
    "conflict": {"name": ["Already exists."]},
}

_PATH_PARAMETERS = {
    "subaccount_id": "The sub-account's id (`sub_...`).",
    "key_id": "The API key's id (`key_...`).",
    "email_id": "The email's id (`msg_...`).",
    "credential_id": "The SMTP credential's id (`smtp_...`).",
    "ref": "The suppression's id (`sup_...`) or the suppressed address.",
    "webhook_id": "The webhook endpoint's id (`whk_...`).",
    "delivery_id": "The webhook delivery's id (`whd_...`), also its webhook-id header.",
}


def _portable_integer_range(field) -> tuple[int, int] | None:
    """Django's portable range of the model integer field behind a ModelSerializer field, when the
    field's bounds are the connected database's column bounds (not a validator of the model's own)."""
    # Imported here: it imports django.db.models, which settings loading must not.
    from django.db.backends.base.operations import BaseDatabaseOperations

    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    if model is None or not isinstance(getattr(field, "source", None), str):
        return None
    try:
        model_field = model._meta.get_field(field.source)
    except FieldDoesNotExist:
        return None
    internal = model_field.get_internal_type()
    if internal not in BaseDatabaseOperations.integer_field_ranges:
        return None
    low, high = connection.ops.integer_field_range(internal)
    if getattr(field, "min_value", None) not in (None, low) or getattr(field, "max_value", None) not in (None, high):
        return None
    return BaseDatabaseOperations.integer_field_ranges[internal]


def raises(*error_classes: type[errors.ApplicationError]) -> Callable:
    """Documents the errors a view method answers with beyond the ones every operation of its kind
    has (see the module docstring): ``@raises(errors.Conflict)`` above (or below) ``@extend_schema``."""

    def decorate(method):
        method._mailroom_raises = (*getattr(method, "_mailroom_raises", ()), *error_classes)
        return method

    return decorate


def error_example(error_class: type[errors.ApplicationError]) -> dict[str, Any]:
    return {"success": False,
            "error": {"code": error_class.code, "message": error_class.default_message, "status": error_class.status,
                      "details": _EXAMPLE_DETAILS.get(error_class.code, {})},
            "meta": EXAMPLE_META}


class EnvelopeAutoSchema(AutoSchema):
    def _register(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
        self.registry.register_on_missing(component)
        return component.ref

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False) -> str:
        """Nested ``Input``/``Output`` classes are named after their view: ``SubAccountListInput``
        (and ``PatchedSubAccountDetailInputRequest``: drf-spectacular prefixes PATCH bodies)."""
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__.split(".")
        if len(qualname) >= 2:
            patched = name.startswith("Patched") and not qualname[-1].startswith("Patched")
            base = name.removeprefix("Patched") if patched else name
            if base.startswith(qualname[-1]):
                name = ("Patched" if patched else "") + qualname[-2].removesuffix("Api") + base
        return name

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        portable = _portable_integer_range(field)
        if portable is not None and schema.get("type") == "integer":
            # Model integer fields get the connected database's column range (SQLite: 64 bits, PostgreSQL:
            # 32 bits for IntegerField): publish Django's portable range so that the schema is the same
            # whichever database generated it (docs/openapi.yaml is compared byte for byte).
            low, high = portable
            schema.pop("format", None)
            if "minimum" in schema:
                schema["minimum"] = low
            if "maximum" in schema:
                schema["maximum"] = high
            if high > 2**31 - 1 or low < -(2**31):
                schema["format"] = "int64"
        return schema

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] == "path" and not parameter.get("description"):
                parameter["description"] = _PATH_PARAMETERS.get(parameter["name"], "")
        return parameters

    # --- what this operation can answer -------------------------------------------------------

    def _authenticated(self) -> bool:
        return bool(self.view.get_authenticators())

    def _has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None

    def _idempotent(self, parameters) -> bool:
        return any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)

    def _error_classes(self, parameters) -> list[type[errors.ApplicationError]]:
        found: list[type[errors.ApplicationError]] = [errors.ApplicationError, errors.NotAcceptable]
        if self._authenticated():
            found += [errors.AuthenticationError, errors.AuthorizationError, errors.RateLimitExceeded]
        if uritemplate.variables(self.path):
            found.append(errors.NotFound)
        if self._has_body():
            found += [errors.BadRequest, errors.PayloadTooLarge, errors.UnsupportedMediaType, errors.ValidationError]
        if any(p["in"] == "query" for p in parameters):
            found.append(errors.ValidationError)
        method = getattr(self.view, self.method.lower(), None)
        found += getattr(method, "_mailroom_raises", ())
        unique: dict[str, type[errors.ApplicationError]] = {}
        for error_class in found:
            unique.setdefault(error_class.code, error_class)
        return sorted(unique.values(), key=lambda c: (c.status, c.code))

    def _error_response(self, status: int, classes, error_ref: dict) -> dict:
        """A ``components/responses`` entry per status and set of codes, so that the answers every
        operation shares are written once (``NotFound``) and a particular set is named after its
        operation (``EmailsSendUnprocessable``)."""
        name = _RESPONSE_NAMES.get(status, f"Error{status}")
        if [c.code for c in classes] != [c.code for c in _DEFAULT_ERRORS.get(status, ())]:
            name = "".join(part.capitalize() for part in self.get_operation_id().split("_")) + name
        if not self._authenticated():
            name = "Public" + name
        lines = "\n".join(f"- `{c.code}`: {c.default_message}" for c in classes)
        headers: dict[str, Any] = {"X-Request-Id": _header_ref("RequestId")}
        if self._authenticated() and status != 401:
            headers.update(_HEADERS_RATE)  # on the requests whose key was recognised
        if status == 429:
            headers["Retry-After"] = _HEADER_RETRY_AFTER
        response = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}. `error.code` is one of:\n\n{lines}",
            "headers": headers,
            "content": {"application/json": {
                "schema": error_ref,
                "examples": {c.code: {"summary": c.code, "value": error_example(c)} for c in classes},
            }},
        }
        component = ResolvedComponent(name=name, type=ResolvedComponent.RESPONSE, schema=response, object=name)
        self.registry.register_on_missing(component)
        return component.ref

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        meta_ref = self._register("Meta", _META)
        self._register("ApiError", _API_ERROR)
        error_ref = self._register("ErrorEnvelope", _ERROR_ENVELOPE)
        for name, header in _SUCCESS_HEADERS.items():
            self.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.HEADER, schema=header, object=name))
        parameters = self._get_parameters()
        for code, response in responses.items():
            if not code.startswith("2"):
                continue
            for media in response.get("content", {}).values():
                media["schema"] = {
                    "type": "object",
                    "required": ["success", "data", "meta"],
                    "properties": {"success": {"type": "boolean", "description": "Always true on success."},
                                   "data": media["schema"], "meta": meta_ref},
                }
                for example in media.get("examples", {}).values():
                    example["value"] = {"success": True, "data": example["value"], "meta": EXAMPLE_META}
            if not response.get("description") or response["description"] == "No response body":
                response["description"] = {"200": "OK.", "201": "Created.", "204": "Done; no body."}.get(code, "OK.")
            headers = response.setdefault("headers", {})
            headers["X-Request-Id"] = _header_ref("RequestId")
            if self._authenticated():
                headers.update({name: _header_ref(_component_name(name)) for name in _HEADERS_RATE})
            if self._idempotent(parameters):
                headers["X-Idempotent-Replay"] = _header_ref("IdempotentReplay")
        by_status: dict[int, list] = defaultdict(list)
        for error_class in self._error_classes(parameters):
            by_status[error_class.status].append(error_class)
        for status in sorted(by_status):
            responses[str(status)] = self._error_response(status, by_status[status], error_ref)
        return responses


class Pagination(serializers.Serializer):
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    has_more = serializers.BooleanField()


_pages: dict[str, serializers.Serializer] = {}


def list_of(key: str, serializer_class) -> serializers.Serializer:
    """The ``{"<key>": [...], "pagination": {...}}`` list shape; one component per item type."""
    name = serializer_class.__name__.removesuffix("Output").removesuffix("Serializer") + "Page"
    if name not in _pages:
        _pages[name] = inline_serializer(name, {key: serializer_class(many=True), "pagination": Pagination()})
    return _pages[name]


def page_example(key: str, *items: dict, total: int | None = None) -> dict[str, Any]:
    """The data of a list response, for an ``OpenApiExample``."""
    total = len(items) if total is None else total
    return {key: list(items), "pagination": {"total": total, "limit": 20, "offset": 0, "has_more": total > len(items)}}


class SubAccountKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SubAccountKeyAuthentication"
    name = "SubAccountApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-SubAccount-ApiKey",
                "description": "Sub-account key (mr_live_... or mr_test_...). "
                               "`Authorization: Bearer <key>` is accepted too."}


class AccountKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccountKeyAuthentication"
    name = "AccountApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Account-ApiKey",
                "description": "Account key (mr_acct_...). `Authorization: Bearer <key>` is accepted too."}


# `make schema` writes docs/openapi.yaml with these overrides (`spectacular --custom-settings`), so the
# committed copy does not depend on the machine's MAILROOM_PUBLIC_URL; the served schema keeps it.
PUBLISHED_SETTINGS = {"SERVERS": [{"url": "http://localhost:8000", "description": "A local `make run`."}]}


TAGS = [
    {"name": "emails", "description": "Send (one or a batch of up to 500), list, fetch, reschedule, cancel, resend."},
    {"name": "templates", "description": "Jinja2 templates with versions, preview rendering and validation."},
    {"name": "domains", "description": "Sending domains, their DNS records, verification and DKIM rotation."},
    {"name": "webhooks", "description": "Endpoints that receive signed event notifications, and their deliveries."},
    {"name": "suppressions", "description": "Recipients that are never sent to, with the reason."},
    {"name": "analytics", "description": "Counts and rates per day, week or month, per tag and per domain."},
    {"name": "api-keys", "description": "The sub-account's own API keys (scope `api_keys:write`)."},
    {"name": "smtp", "description": "SMTP relay credentials (the password is shown once)."},
    {"name": "account", "description": "Account scope (`X-Account-ApiKey`): sub-accounts, their keys, "
                                       "account keys, usage and analytics across sub-accounts."},
]


def _data_schema(schema: dict, response: dict) -> dict:
    body = response.get("content", {}).get("application/json", {}).get("schema", {})
    data = body.get("properties", {}).get("data", {})
    if "$ref" in data:
        data = schema["components"]["schemas"][data["$ref"].rsplit("/", 1)[1]]
    return data


# Realistic values by field name, in the seeds' style, for the response examples made from the schema.
_EXAMPLE_VALUES: dict[str, Any] = {
    "from": "Acme <hello@acme.com>", "to": ["ada@example.com"], "cc": [], "bcc": [], "reply_to": [],
    "subject": "Welcome to Acme, Ada!", "html": "<h1>Welcome to Acme, Ada!</h1>", "text": "Welcome to Acme, Ada!",
    "tags": ["welcome"], "metadata": {"user_id": "u_1042"}, "name": "welcome", "tag": "welcome",
    "domain": "acme.com", "unicode_domain": "acme.com", "url": "https://acme.com/hooks/mailroom",
    "address": "ada@example.com", "recipient": "ada@example.com", "contact_email": "billing@acme.com",
    "variables": ["company", "user_name"], "required_variables": ["company", "user_name"],
    "scopes": ["emails:send", "emails:read"], "events": ["email.delivered", "email.bounced"],
    "username": "smtp_live_7f3k9q2m4x8p", "prefix": "mr_live_9XkQ", "key": "mr_live_9XkQ2w7Rz4LmP0sT8vBc3NdF6hJa",
    "secret": "whsec_MfKQ9r8GLfTp0oyo3fw5x2ElW8YhaaBw", "password": "q8vT2mZr7KxL4pWn9sYb3CfH",
    "message_id": "<msg_3Jf8cVq2LxZr9TbWnK4dPa7e@acme.com>", "period": "2026-05-04", "month": "2026-05",
    "description": "Production", "note": "", "last_error": "", "error": None, "group_by": "day",
}
_ID_PREFIXES = {"email": "msg", "event": "evt", "template": "tpl", "domain": "dom", "endpoint": "whk",
                "delivery": "whd", "suppression": "sup", "subaccount": "sub", "apikey": "key", "smtp": "smtp",
                "account": "acc"}


def _example_id(component: str) -> str:
    lowered = component.lower()
    prefix = next((p for word, p in _ID_PREFIXES.items() if word in lowered), "obj")
    return f"{prefix}_3Jf8cVq2LxZr9TbWnK4dPa7e"


def _example(result: dict, schema: dict, name: str = "", component: str = "", depth: int = 0) -> Any:
    if "$ref" in schema:
        component = schema["$ref"].rsplit("/", 1)[1]
        return _example(result, result["components"]["schemas"][component], name, component, depth)
    if "oneOf" in schema or "allOf" in schema:
        return _example(result, (schema.get("oneOf") or schema["allOf"])[0], name, component, depth)
    kind = schema.get("type")
    value = _EXAMPLE_VALUES.get(name, ...)
    if value is not ... and (value is None or {"string": str, "array": list, "object": dict}.get(kind) is type(value)):
        items = schema.get("items", {})
        if kind != "array" or items.get("type") == "string" or "enum" in items:
            return value
    if kind == "string" and (name == "id" or name.endswith("_id")):
        return _example_id(name.removesuffix("_id") if name != "id" else component or "obj")
    if "enum" in schema:
        return next((v for v in schema["enum"] if v not in ("", None)), None)
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        return {key: _example(result, sub, key, component, depth + 1)
                for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(result, schema.get("items", {}), name.removesuffix("s"), component, depth + 1)]
    if kind == "string":
        return {"date-time": "2026-05-04T09:30:00Z", "date": "2026-05-04", "email": "ada@example.com",
                "uri": "https://acme.com/"}.get(schema.get("format"), name.replace("_", " ") or "text")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return name not in ("replayed", "has_more", "required")
    return None


def _add_response_examples(result: dict) -> None:
    """Every success response without an example of its own gets one made from its schema, so that
    each operation shows one (the views' OpenApiExamples, written by hand, take precedence)."""
    for item in result["paths"].values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json") if status.startswith("2") else None
                if media is None or media.get("examples"):
                    continue
                media["examples"] = {"example": {"summary": operation.get("summary", ""),
                                                 "value": _example(result, media["schema"])}}
                media["examples"]["example"]["value"]["meta"] = EXAMPLE_META


def postprocess(result: dict, generator, request, public) -> dict:
    """Tag descriptions, and OpenAPI links from where an id comes from (a create, the first item of
    a list) to the operations that take it in their path: a stateful client (schemathesis) can
    follow them from a created object to every operation on it."""
    result["tags"] = [tag for tag in TAGS if any(
        tag["name"] in op.get("tags", ()) for item in result["paths"].values() for op in item.values())]
    paths = result["paths"]
    for source_path, item in paths.items():
        for method, operation in item.items():
            status = {"post": "201", "get": "200"}.get(method)
            if status not in operation.get("responses", {}):
                continue
            data = _data_schema(result, operation["responses"][status])
            if method == "post" and "id" in data.get("properties", {}):
                pointer = "$response.body#/data/id"
            elif method == "get" and "pagination" in data.get("properties", {}):
                key = next(name for name in data["properties"] if name != "pagination")
                pointer = f"$response.body#/data/{key}/0/id"
            else:
                continue
            links = {}
            for target_path, target_item in paths.items():
                rest = target_path.removeprefix(source_path + "/")
                if rest == target_path or not rest.startswith("{"):
                    continue
                new_param = rest[1:rest.index("}")]
                if set(uritemplate.variables(target_path)) != set(uritemplate.variables(source_path)) | {new_param}:
                    continue  # another id the source does not know (a delivery of a new endpoint)
                for target_method, target in target_item.items():
                    if method == "get" and target_method != "get":
                        continue  # a list's first item may be the caller's own key: only read it
                    parameters = {p["name"]: f"$request.path.{p['name']}" for p in target.get("parameters", [])
                                  if p["in"] == "path" and p["name"] != new_param}
                    parameters[new_param] = pointer
                    name = "".join(part.capitalize() for part in target["operationId"].split("_"))
                    links[name] = {"operationId": target["operationId"], "parameters": dict(sorted(parameters.items()))}
            if links:
                operation["responses"][status]["links"] = dict(sorted(links.items()))
    _add_response_examples(result)
    return result
