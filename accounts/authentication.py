"""DRF authentication for account keys and sub-account keys (DESIGN section 1)."""

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import KeyKind
from accounts.principals import principal_cached, principal_for_key
from accounts.throttling import cache_usage
from config.api.errors import AuthorizationError, RateLimitExceeded

AUTH_FAILURE_GROUP = "auth-failures"


def _client_ip(group, request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _failure_usage(request, *, increment: bool):
    return cache_usage(
        request, group=AUTH_FAILURE_GROUP, key=_client_ip,
        rate=f"{settings.MAILROOM_AUTH_FAILURES_PER_MINUTE}/m", increment=increment,
    )


def auth_failure_record(request) -> None:
    """Count a failed authentication against the client's address (missing key on a protected
    route; the exception handler calls this when it answers 401 for it)."""
    _failure_usage(request, increment=True)


def _raise_if_ip_blocked(request) -> None:
    """Once an address has failed too often this minute, even a valid key from it gets 429:
    otherwise a key-guessing client could still tell a hit (200) from a miss."""
    usage = _failure_usage(request, increment=False)
    if usage and usage["count"] >= usage["limit"]:
        wait = max(usage["time_left"], 1)
        raise RateLimitExceeded(f"Too many failed authentications from this address; retry in {wait} s.",
                                headers={"Retry-After": str(wait)})


def _bearer(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class _ApiKeyAuthentication(BaseAuthentication):
    meta_header: str
    header_name: str
    kinds: tuple[str, ...]
    kind_label: str

    def authenticate(self, request):
        raw_key = request.META.get(self.meta_header, "").strip() or _bearer(request)
        if not raw_key:
            # Not a failure yet: a view open to anonymous callers may not need a key at all.
            # The 401 that follows on a protected view is counted by auth_failure_record.
            return None
        if not principal_cached(raw_key):
            # A key this process has already verified skips the blocked-address check: a
            # guessing client never holds one, and the hot path saves two cache round trips.
            _raise_if_ip_blocked(request._request)
        principal = principal_for_key(raw_key)
        if principal is None or principal.kind not in self.kinds:
            _failure_usage(request._request, increment=True)
            raise AuthenticationFailed(f"Invalid, revoked or wrong kind of API key; this route needs "
                                       f"{self.kind_label} in {self.header_name}.")
        reason = principal.suspended_reason
        if reason:
            raise AuthorizationError(reason)
        request._request.account = principal.account
        request._request.subaccount = principal.subaccount
        request._request.principal = principal
        return principal, principal

    def authenticate_header(self, request) -> str:
        return f'ApiKey header="{self.header_name}"'


class SubAccountKeyAuthentication(_ApiKeyAuthentication):
    meta_header = "HTTP_X_SUBACCOUNT_APIKEY"
    header_name = "X-SubAccount-ApiKey"
    kinds = (KeyKind.LIVE, KeyKind.TEST)
    kind_label = "a sub-account key (mr_live_ or mr_test_)"


class AccountKeyAuthentication(_ApiKeyAuthentication):
    meta_header = "HTTP_X_ACCOUNT_APIKEY"
    header_name = "X-Account-ApiKey"
    kinds = (KeyKind.ACCOUNT,)
    kind_label = "an account key (mr_acct_)"
