"""Who is sending: SMTP AUTH against SMTP credentials, with the API's limits.

These functions are synchronous (Django ORM, cache) and run in a worker thread; the handler
awaits them. Failed logins count against the client's address in the same per-IP budget as
failed API authentications (``MAILROOM_AUTH_FAILURES_PER_MINUTE``), so switching protocols
buys an attacker no extra guesses. Accepted messages count against the credential's
per-minute limit (its own override, else the plan's), as API requests count against a key.
"""

from dataclasses import dataclass
from types import SimpleNamespace

from aiosmtpd.smtp import AuthResult
from django.conf import settings

from accounts.authentication import AUTH_FAILURE_GROUP, auth_failure_record
from accounts.keys import key_digest
from accounts.principals import Principal
from accounts.throttling import cache_usage, key_usage
from emails.relay import credentials, replies


@dataclass(frozen=True)
class RelayLogin:
    """What an authenticated session keeps (``session.auth_data``): enough to look the
    credential up again before each message, so a revocation ends the session."""

    username: str
    digest: str


def _request_for(peer_ip: str):
    # django-ratelimit reads only what its key function reads; ours read REMOTE_ADDR.
    return SimpleNamespace(META={"REMOTE_ADDR": peer_ip}, method="SMTP")


def _blocked_for(peer_ip: str) -> int | None:
    """Seconds to wait when this address has failed too often this minute, else None."""
    usage = cache_usage(_request_for(peer_ip), group=AUTH_FAILURE_GROUP, key=lambda group, request: peer_ip,
                        rate=f"{settings.MAILROOM_AUTH_FAILURES_PER_MINUTE}/m", increment=False)
    if usage and usage["count"] >= usage["limit"]:
        return max(usage["time_left"], 1)
    return None


def authenticate(*, peer_ip: str, login: bytes, password: bytes) -> AuthResult:
    """The relay's authenticator: an ``AuthResult`` carrying a ``RelayLogin`` on success."""
    wait = _blocked_for(peer_ip)
    if wait is not None:
        # Even a right password gets no answer but this, or a guesser could tell a hit.
        return AuthResult(success=False, handled=False, message=(
            f"421 4.7.0 Too many failed authentications from this address; try again in {wait} s, "
            "closing connection"))
    try:
        username, secret = login.decode("utf-8"), password.decode("utf-8")
    except UnicodeDecodeError:
        username = secret = ""
    principal = credentials.principal_for_login(username, secret)
    if principal is None:
        auth_failure_record(_request_for(peer_ip))
        return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
    reason = principal.suspended_reason
    if reason:
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 {replies.clean(reason)}")
    return AuthResult(success=True, auth_data=RelayLogin(username=username, digest=key_digest(secret)))


def current_principal(login: RelayLogin) -> tuple[Principal | None, str | None]:
    """(principal, None) while the credential is still good, else (None, the reply to send)."""
    principal = credentials.principal_for_digest(login.username, login.digest)
    if principal is None:
        return None, replies.AUTH_REVOKED
    reason = principal.suspended_reason
    if reason:
        return None, f"550 5.7.1 {replies.clean(reason)}"
    return principal, None


def rate_limit_reply(principal: Principal) -> str | None:
    """Count one message against the credential's per-minute limit; the 421 reply when over."""
    usage = key_usage(_request_for(""), principal, increment=True)
    if usage is None or not usage.limited:  # None: the cache is down and limits fail open
        return None
    return (f"421 4.7.0 Rate limit of {usage.limit} messages per minute exceeded; "
            f"try again in {usage.retry_after} s, closing connection")
