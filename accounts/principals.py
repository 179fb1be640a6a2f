"""Who is calling: API keys resolved to a principal, cached briefly in process memory.

A warm key costs no database query. Revocation and suspension evict the entry at once in the
process that made them; other processes see it when the entry expires
(``MAILROOM_KEY_CACHE_SECONDS``, 30 s by default, so well inside 60 s).
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.keys import digests_match, key_digest, key_kind_of
from accounts.models import Account, ApiKey, KeyKind, Scope, SubAccount, TenantStatus

LAST_USED_WRITE_INTERVAL = 60.0


@dataclass
class Principal:
    key_pk: int
    key_id: str
    kind: str
    scopes: frozenset[str]
    rate_limit: int | None
    account: Account
    subaccount: SubAccount | None
    digest: str

    is_authenticated = True
    is_anonymous = False

    @property
    def environment(self) -> str:
        return "test" if self.kind == KeyKind.TEST else "live"

    @property
    def is_test(self) -> bool:
        return self.kind == KeyKind.TEST

    @property
    def requests_per_minute(self) -> int:
        return self.rate_limit or self.account.plan.requests_per_minute

    def has_scope(self, scope: str) -> bool:
        return Scope.FULL_ACCESS in self.scopes or scope in self.scopes

    @property
    def suspended_reason(self) -> str | None:
        if self.account.status == TenantStatus.SUSPENDED:
            return "This account is suspended" + (f": {self.account.suspended_reason}" if
                                                  self.account.suspended_reason else ".")
        if self.subaccount is not None and self.subaccount.status == TenantStatus.SUSPENDED:
            return "This sub-account is suspended" + (f": {self.subaccount.suspended_reason}" if
                                                      self.subaccount.suspended_reason else ".")
        return None


class LastUsedWriter:
    """Writes a credential's ``last_used_at`` at most once a minute per row and process.

    Remembers when this process last wrote each row (by pk), apart from any cached principal,
    so reloading an expired cache entry does not cause an extra write. Shared by API keys and
    SMTP credentials.
    """

    def __init__(self, model):
        self.model = model
        self._written: dict[int, float] = {}
        self._lock = threading.Lock()

    def touch(self, pk: int, now: float) -> None:
        with self._lock:
            last = self._written.get(pk)
            if last is not None and now - last < LAST_USED_WRITE_INTERVAL:
                return
            self._written[pk] = now
        self.model.objects.filter(pk=pk).update(last_used_at=timezone.now())

    def clear(self) -> None:
        with self._lock:
            self._written.clear()


_cache: dict[str, tuple[float, Principal]] = {}
_last_used = LastUsedWriter(ApiKey)
_lock = threading.Lock()


def principal_cached(raw_key: str) -> bool:
    """Whether this process holds a fresh entry for the key (no database or cache round trip)."""
    if not raw_key or len(raw_key) > 128:
        return False
    with _lock:
        cached = _cache.get(key_digest(raw_key))
    return bool(cached and cached[0] > time.monotonic())


def principal_for_key(raw_key: str) -> Principal | None:
    if not raw_key or key_kind_of(raw_key) is None or len(raw_key) > 128:
        return None
    digest = key_digest(raw_key)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(digest)
    if cached and cached[0] > now:
        principal = cached[1]
    else:
        principal = _load(digest)
        if principal is None:
            return None
        with _lock:
            _cache[digest] = (now + settings.MAILROOM_KEY_CACHE_SECONDS, principal)
    _last_used.touch(principal.key_pk, now)
    return principal


def _load(digest: str) -> Principal | None:
    key = (
        ApiKey.objects.select_related("account__plan", "subaccount")
        .filter(digest=digest, revoked_at__isnull=True)
        .first()
    )
    if key is None or not digests_match(key.digest, digest):
        return None
    return Principal(
        key_pk=key.pk, key_id=key.public_id, kind=key.kind, scopes=frozenset(key.scopes or ()),
        rate_limit=key.rate_limit, account=key.account, subaccount=key.subaccount, digest=digest,
    )


def forget_digest(digest: str) -> None:
    with _lock:
        _cache.pop(digest, None)


def forget_account(account_id: int) -> None:
    with _lock:
        for digest in [d for d, (_, p) in _cache.items() if p.account.pk == account_id]:
            _cache.pop(digest, None)


def forget_all() -> None:
    with _lock:
        _cache.clear()
    _last_used.clear()
