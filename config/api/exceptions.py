"""The one DRF exception handler: every failure becomes the error envelope."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from accounts.authentication import auth_failure_record
from config.api import errors
from config.api.envelope import error_dict

logger = logging.getLogger("mailroom.api")


def _flatten_details(detail) -> dict:
    """DRF validation detail -> {"field": ["message", ...]}; nested fields are dotted."""
    if isinstance(detail, dict):
        out: dict = {}
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else str(key)
            if isinstance(value, dict):
                for sub_key, sub_value in _flatten_details(value).items():
                    out[f"{name}.{sub_key}" if sub_key != "non_field_errors" else name] = sub_value
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub_key, sub_value in _flatten_details(item).items():
                        out[f"{name}.{index}.{sub_key}"] = sub_value
            else:
                out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def _missing_key_message(view) -> str:
    authenticators = view.get_authenticators() if view is not None else []
    header = getattr(authenticators[0], "header_name", "the API key header") if authenticators else "the API key header"
    return f"Missing API key: send it in {header} (or Authorization: Bearer <key>)."


def _translate(exc, view=None, request=None) -> errors.ApplicationError | None:
    if isinstance(exc, errors.ApplicationError):
        return exc
    if isinstance(exc, Http404 | drf.NotFound):
        return errors.NotFound()
    if isinstance(exc, drf.ValidationError):
        return errors.ValidationError(details=_flatten_details(exc.detail))
    if isinstance(exc, drf.ParseError):
        return errors.BadRequest(f"Malformed JSON: {exc.detail}")
    if isinstance(exc, drf.NotAuthenticated):
        if request is not None:
            auth_failure_record(getattr(request, "_request", request))
        return errors.AuthenticationError(_missing_key_message(view))
    if isinstance(exc, drf.AuthenticationFailed):
        return errors.AuthenticationError(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied | PermissionDenied):
        return errors.AuthorizationError(str(getattr(exc, "detail", "")) or None)
    if isinstance(exc, drf.MethodNotAllowed):
        return errors.MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return errors.UnsupportedMediaType(str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return errors.NotAcceptable()
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)
        return errors.RateLimitExceeded(
            f"Rate limit exceeded; retry in {wait} s.", headers={"Retry-After": str(max(wait, 1))}
        )
    if isinstance(exc, drf.APIException):
        # Any other DRF error keeps its own status and code (never "internal_error" with a 4xx).
        error = errors.ApplicationError(str(exc.detail))
        error.status, error.code = exc.status_code, exc.default_code
        return error
    return None


def exception_handler(exc, context):
    request = context.get("request")
    error = _translate(exc, context.get("view"), request)
    if error is None:
        logger.exception(
            "Unhandled error (request_id=%s)", getattr(request, "request_id", "-"), exc_info=exc
        )
        error = errors.ApplicationError()
    headers = dict(error.headers)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    body = {"error": error_dict(error.code, error.message, error.status, error.details)}
    return Response(body, status=error.status, headers=headers)
