"""Per-key request rate limit, counted by django-ratelimit in the shared cache."""

import time
from dataclasses import dataclass

from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle


@dataclass(frozen=True)
class RateUsage:
    limit: int
    remaining: int
    reset_at: int


class ApiKeyRateThrottle(BaseThrottle):
    """Runs after authentication, so it keys on the resolved API key, never the IP."""

    def allow_request(self, request, view) -> bool:
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            return True
        limit = principal.requests_per_minute
        usage = get_usage(
            request._request, group="api-key", key=lambda group, req: principal.key_id,
            rate=f"{limit}/m", increment=True,
        )
        if usage is None:  # cache unavailable and RATELIMIT_FAIL_OPEN: never block sending on it
            return True
        self._wait = max(usage["time_left"], 1)
        request._request.ratelimit_usage = RateUsage(
            limit=limit, remaining=max(limit - usage["count"], 0), reset_at=int(time.time()) + self._wait
        )
        return not usage["should_limit"]

    def wait(self) -> float:
        return self._wait
