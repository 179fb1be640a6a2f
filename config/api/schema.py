"""OpenAPI: the envelope around every response, the error responses, the key headers.

drf-spectacular's response hook (``_get_response_bodies``) is private API; the schema
snapshot test catches a release that changes it.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

PAGINATION_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page, 1-100 (default 20)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Items to skip (default 0)."),
]

_META = {
    "type": "object",
    "required": ["request_id", "timestamp"],
    "properties": {
        "request_id": {"type": "string", "example": "req_4f1c2a9e8b7d6c5b4a3f2e1d"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}
_ERROR_ENVELOPE = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message", "status", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "status": {"type": "integer"},
                "details": {"type": "object", "additionalProperties": {}},
            },
        },
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
}
_ERRORS = {
    "400": "Malformed JSON (`bad_request`).",
    "401": "Missing, invalid, revoked or wrong kind of API key (`authentication_error`).",
    "403": "The key lacks a scope or the tenant is suspended (`authorization_error`).",
    "404": "No such object for this tenant (`not_found`).",
    "413": "Request body too large (`payload_too_large`).",
    "422": "Invalid input (`validation_error` and friends); `details` names the fields.",
    "429": "Rate limit (`rate_limit_exceeded`, with Retry-After) or quota (`quota_exceeded`).",
    "500": "Unexpected error (`internal_error`).",
}
_RATE_HEADERS = {
    "X-Request-Id": {"schema": {"type": "string"}, "description": "Echoes meta.request_id."},
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed per minute."},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in the window."},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Epoch seconds when it resets."},
}


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

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        meta_ref = self._register("Meta", _META)
        error_ref = self._register("ErrorEnvelope", _ERROR_ENVELOPE)
        authenticated = bool(self.view.get_authenticators())
        for code, response in responses.items():
            for media in response.get("content", {}).values():
                if code.startswith("2"):
                    media["schema"] = {
                        "type": "object",
                        "required": ["success", "data", "meta"],
                        "properties": {"success": {"type": "boolean"}, "data": media["schema"],
                                       "meta": meta_ref},
                    }
            if authenticated:
                response.setdefault("headers", {}).update(_RATE_HEADERS)
        for code, description in _ERRORS.items():
            responses.setdefault(code, {
                "description": description,
                "content": {"application/json": {"schema": error_ref}},
            })
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
