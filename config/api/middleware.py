import re
import secrets

from accounts.throttling import key_usage

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Gives every request an id (a client's own one is kept when well-formed) and echoes it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else f"req_{secrets.token_hex(12)}"
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


class RateLimitHeadersMiddleware:
    """Adds X-RateLimit-* to every response of an authenticated request.

    The key throttle leaves its count on the request. DRF checks permissions before throttles,
    so a request refused for a missing scope never reaches the throttle: it is counted here,
    so that it carries the headers too and cannot be used to hammer the API for free.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        usage = getattr(request, "ratelimit_usage", None)
        principal = getattr(request, "principal", None)
        if usage is None and principal is not None:
            usage = key_usage(request, principal, increment=True)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
            response["X-RateLimit-Reset"] = str(usage.reset_at)
        return response
