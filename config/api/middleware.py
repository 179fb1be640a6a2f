import re
import secrets

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
    """Adds X-RateLimit-* to responses whose request went through the key throttle."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        usage = getattr(request, "ratelimit_usage", None)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
            response["X-RateLimit-Reset"] = str(usage.reset_at)
        return response
