"""Reading domains: API lookups (always scoped to the sub-account), the signing key for the
worker (cached in process memory), and what the rest of the platform asks about a domain."""

import threading
import time
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from config.api.errors import NotFound
from domains import crypto, records
from domains.dkim import DkimSigningKey
from domains.models import DkimKey, DkimKeyStatus, Domain, DomainStatus
from domains.names import lookup_form

# How long a worker process keeps a decrypted signing key. A rotation reaches every worker
# within this time; the old key's record stays published far longer, so mail signed with it
# meanwhile still verifies.
SIGNING_KEY_CACHE_SECONDS = 60.0
_SIGNING_KEY_CACHE_MAX = 10_000


def _with_live_keys(queryset: QuerySet[Domain]) -> QuerySet[Domain]:
    return queryset.prefetch_related(Prefetch(
        "dkim_keys", queryset=DkimKey.objects.exclude(status=DkimKeyStatus.RETIRED).order_by("id")))


def domain_list(*, subaccount, status: str | None = None) -> QuerySet[Domain]:
    queryset = subaccount.domains.all()
    if status:
        queryset = queryset.filter(status=status)
    return _with_live_keys(queryset.order_by("-created_at", "-id"))


def domain_get_for_subaccount(*, subaccount, domain: str) -> Domain:
    """One of ``subaccount``'s domains by name (Unicode or A-label) or public id; 404 otherwise,
    including when another tenant has it (no enumeration)."""
    queryset = _with_live_keys(subaccount.domains.all())
    found = None
    if domain.startswith("dom_"):
        found = queryset.filter(public_id=domain).first()
    else:
        name = lookup_form(domain)
        if name is not None:
            found = queryset.filter(name=name).first()
    if found is None:
        raise NotFound("Domain not found.")
    return found


def domain_ids_due_for_check(*, now: datetime, limit: int) -> list[int]:
    return list(Domain.objects.filter(next_check_at__lte=now).order_by("next_check_at")
                .values_list("id", flat=True)[:limit])


# (subaccount id, domain name) -> (expires, the domain's own track_opens/track_clicks or None).
# Every send asks; settings change rarely. Changes through domains.services apply at once in
# the process that made them and within TRACKING_CACHE_SECONDS elsewhere.
TRACKING_CACHE_SECONDS = 10.0
_tracking_cache: dict[tuple[int, str], tuple[float, dict]] = {}


def domain_tracking_forget(*, subaccount_id: int, domain: str) -> None:
    _tracking_cache.pop((subaccount_id, lookup_form(domain) or domain), None)


def _tracking_row(*, subaccount, from_domain: str) -> dict:
    """The domain's tracking settings, cached (see above); {} when the sub-account has no such domain."""
    name = lookup_form(from_domain)
    key = (subaccount.pk, name or "")
    cached = _tracking_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    row = (subaccount.domains.filter(name=name).values(
        "name", "track_opens", "track_clicks", "tracking_subdomain", "record_states").first() if name else None) or {}
    _tracking_cache[key] = (time.monotonic() + TRACKING_CACHE_SECONDS, row)
    return row


def domain_tracking_defaults(*, subaccount, from_domain: str) -> tuple[bool, bool]:
    """(track_opens, track_clicks) for mail from ``from_domain`` when the request says nothing:
    the domain's own setting, else the sub-account's."""
    row = _tracking_row(subaccount=subaccount, from_domain=from_domain)
    opens = row.get("track_opens")
    clicks = row.get("track_clicks")
    return (subaccount.track_opens if opens is None else opens,
            subaccount.track_clicks if clicks is None else clicks)


def domain_tracking_host(*, subaccount, from_domain: str) -> str | None:
    """The domain's own tracking host (``track.acme.com``) once its CNAME is verified, else None.

    An unverified CNAME would turn every link of the email into a dead one, so the setting
    only takes effect after the domain check has seen the record.
    """
    from domains import records

    row = _tracking_row(subaccount=subaccount, from_domain=from_domain)
    if not row.get("tracking_subdomain"):
        return None
    state = (row["record_states"] or {}).get(records.TRACKING) or {}
    if state.get("status") != records.VERIFIED:
        return None
    return f"{row['tracking_subdomain']}.{row['name']}"


def domain_authentication_warnings(*, subaccount_id: int, domain: str) -> list[dict]:
    """For ``GET /emails/{id}/insights``: what the last check said about the sending domain's
    SPF, DKIM and DMARC, from stored state (no DNS lookup). Each item is ``{code, message}``."""
    name = lookup_form(domain)
    row = None
    if name:
        row = _with_live_keys(Domain.objects.filter(subaccount_id=subaccount_id, name=name)).first()
    if row is None:
        return [{"code": "domain_not_added",
                 "message": f"{domain} is not a domain of this sub-account: mail from it is not DKIM-signed, "
                            "and SPF/DMARC cannot be checked."}]
    found = []
    by_purpose = {r["purpose"]: r for r in records.dns_records(row) if r["required"] or r["purpose"] == "dmarc"}
    for purpose, label in (("spf", "SPF"), ("dkim", "DKIM"), ("dmarc", "DMARC")):
        record = by_purpose.get(purpose)
        if record and record["status"] != records.VERIFIED:
            detail = record["error"] or "it has not been checked yet"
            found.append({"code": f"{purpose}_not_verified",
                          "message": f"{label} for {row.name} is {record['status']}: {detail}"})
    if row.status != DomainStatus.VERIFIED and not found:
        found.append({"code": "domain_not_verified", "message": f"{row.name} is {row.status}."})
    return found


# --- The signing key, cached per process ----------------------------------------------------

_signing_cache: dict[tuple[int, str], tuple[float, DkimSigningKey | None]] = {}
_signing_lock = threading.Lock()


def dkim_signing_key(*, subaccount_id: int, domain: str) -> DkimSigningKey | None:
    """The key that signs mail from ``domain`` for this sub-account, decrypted, or None.

    During a rotation this is the old key until the new record verifies. Kept in process
    memory for ``SIGNING_KEY_CACHE_SECONDS`` (absences too): the worker signs thousands of
    messages a second and must not query and decrypt for each.
    """
    name = lookup_form(domain)
    if name is None:
        return None
    cache_key = (subaccount_id, name)
    now = time.monotonic()
    with _signing_lock:
        cached = _signing_cache.get(cache_key)
    if cached and cached[0] > now:
        return cached[1]
    row = (DkimKey.objects.filter(domain__subaccount_id=subaccount_id, domain__name=name,
                                  status=DkimKeyStatus.ACTIVE)
           .values("selector", "private_key_encrypted").first())
    key = None
    if row and row["private_key_encrypted"]:
        key = DkimSigningKey(domain=name, selector=row["selector"],
                             private_key_pem=crypto.decrypt(row["private_key_encrypted"]))
    with _signing_lock:
        if len(_signing_cache) >= _SIGNING_KEY_CACHE_MAX:
            _signing_cache.clear()
        _signing_cache[cache_key] = (now + SIGNING_KEY_CACHE_SECONDS, key)
    return key


def dkim_signing_key_forget(*, subaccount_id: int | None = None, domain: str | None = None) -> None:
    """Drop cached keys (one domain's, or all): called by the services that change keys so
    this process sees the change at once; other processes see it within the cache time."""
    with _signing_lock:
        if subaccount_id is None:
            _signing_cache.clear()
        else:
            _signing_cache.pop((subaccount_id, domain or ""), None)
