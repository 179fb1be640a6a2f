"""SMTP credentials: create, revoke, list, and resolve a username/password to a principal.

The password is shown once and stored as a SHA-256 digest, as API keys are (accounts/keys.py);
it is 40 random base62 characters, so a fast digest is enough. A resolved login is kept in
process memory for ``MAILROOM_KEY_CACHE_SECONDS``, so a client opening one connection per
message costs no query per AUTH; revocation in this process evicts it at once, other relay
processes see it when the entry expires.
"""

import secrets
import string
import threading
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.keys import digests_match, key_digest
from accounts.models import KeyKind, Scope, SmtpCredential, SubAccount
from accounts.principals import LastUsedWriter, Principal
from config.api.errors import AuthorizationError, NotFound, ValidationError
from config.ids import random_token

PASSWORD_PREFIX = "mr_smtp_"
USERNAME_PREFIX = "smtp"
_USERNAME_ALPHABET = string.ascii_lowercase + string.digits


def _new_username(environment: str) -> str:
    # Lowercase letters and digits only: some SMTP clients and config UIs mangle other characters.
    return f"{USERNAME_PREFIX}_{environment}_" + "".join(secrets.choice(_USERNAME_ALPHABET) for _ in range(12))


def smtp_credential_create(*, subaccount: SubAccount, environment: str, name: str = "",
                           rate_limit: int | None = None, granted_by: Principal | None = None,
                           operator: bool = False) -> tuple[SmtpCredential, str]:
    """Create a login and return it with the raw password, which is never stored or shown again.

    A test key may only create test credentials (a leaked test key must not mint a login that
    delivers real mail), and a tenant may not set a rate limit above the plan; an operator may.
    """
    if environment not in (KeyKind.LIVE, KeyKind.TEST):
        raise ValidationError(details={"environment": ["Must be 'live' or 'test'."]})
    if granted_by is not None and granted_by.kind == KeyKind.TEST and environment != KeyKind.TEST:
        raise AuthorizationError("A test key can only create test SMTP credentials.")
    plan_limit = subaccount.account.plan.requests_per_minute
    if rate_limit is not None and not operator and rate_limit > plan_limit:
        raise ValidationError(details={"rate_limit": [
            f"Must be at most the plan's {plan_limit} messages per minute."]})
    password = PASSWORD_PREFIX + random_token(40)
    for _ in range(5):
        try:
            with transaction.atomic():
                credential = SmtpCredential.objects.create(
                    subaccount=subaccount, environment=environment, name=name, rate_limit=rate_limit,
                    username=_new_username(environment), digest=key_digest(password),
                )
            return credential, password
        except IntegrityError:  # a username collision (36^12 names): draw again
            continue
    raise RuntimeError("Could not draw a unique SMTP username")


def smtp_credential_revoke(*, credential: SmtpCredential) -> SmtpCredential:
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
    forget_username(credential.username)
    return credential


def smtp_credential_list(*, subaccount: SubAccount) -> QuerySet[SmtpCredential]:
    return subaccount.smtp_credentials.order_by("-created_at", "-id")


def smtp_credential_get(*, subaccount: SubAccount, credential_id: str) -> SmtpCredential:
    credential = smtp_credential_list(subaccount=subaccount).filter(public_id=credential_id).first()
    if credential is None:
        raise NotFound("SMTP credential not found.")
    return credential


# --- Resolving a login ------------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[float, Principal]] = {}
_last_used = LastUsedWriter(SmtpCredential)
_lock = threading.Lock()


def principal_for_login(username: str, password: str) -> Principal | None:
    """The principal of an active credential, or None for a wrong, unknown or revoked login.

    The principal is an ``accounts.principals.Principal`` (kind = environment, the one scope
    ``emails:send``), so plan limits and suspension rules are the API's own.
    """
    if not username or not password or len(username) > 64 or len(password) > 128:
        return None
    return principal_for_digest(username, key_digest(password))


def principal_for_digest(username: str, digest: str) -> Principal | None:
    """As ``principal_for_login``, from the password's digest (what a session keeps)."""
    cache_key = (username, digest)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(cache_key)
    if cached and cached[0] > now:
        principal = cached[1]
    else:
        principal = _load(username, digest)
        if principal is None:
            return None
        with _lock:
            _cache[cache_key] = (now + settings.MAILROOM_KEY_CACHE_SECONDS, principal)
    _last_used.touch(principal.key_pk, now)
    return principal


def _load(username: str, digest: str) -> Principal | None:
    credential = (SmtpCredential.objects.select_related("subaccount__account__plan")
                  .filter(username=username, revoked_at__isnull=True).first())
    if credential is None or not digests_match(credential.digest, digest):
        return None
    subaccount = credential.subaccount
    return Principal(
        key_pk=credential.pk, key_id=credential.public_id, kind=credential.environment,
        scopes=frozenset({Scope.EMAILS_SEND.value}), rate_limit=credential.rate_limit,
        account=subaccount.account, subaccount=subaccount, digest=digest,
    )


def forget_username(username: str) -> None:
    with _lock:
        for key in [k for k in _cache if k[0] == username]:
            _cache.pop(key, None)


def forget_all() -> None:
    with _lock:
        _cache.clear()
    _last_used.clear()
