"""Views that live outside the apps: health and the JSON error pages."""

import logging

from django.db import connection
from django.http import JsonResponse

from config.api.envelope import error_body, error_dict, success_body
from config.health import broker_ok

logger = logging.getLogger("mailroom.api")


def healthz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "down"
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = "ok" if broker_ok() else "error: unreachable"
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    if healthy:
        return JsonResponse(success_body(body, request))
    return JsonResponse(
        error_body(error_dict("service_unavailable", "A backing service is down.", 503, checks), request),
        status=503,
    )


def _error(request, code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(error_dict(code, message, status), request), status=status)


def not_found(request, exception=None):
    return _error(request, "not_found", "No route matches this URL.", 404)


def server_error(request):
    logger.error("Unhandled error (request_id=%s)", getattr(request, "request_id", "-"))
    return _error(request, "internal_error", "An unexpected error occurred.", 500)


def bad_request(request, exception=None):
    return _error(request, "bad_request", "Bad request.", 400)


def permission_denied(request, exception=None):
    return _error(request, "authorization_error", "Forbidden.", 403)
