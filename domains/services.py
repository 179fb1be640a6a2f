"""Writing domains: add, update, delete, verify against DNS, rotate DKIM, and the sender check
the sending pipeline calls.

DNS is asked outside any transaction; the results are stored in a short one that locks the
row and re-reads it, so a rotation or an edit made while the lookups ran is never overwritten.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.api.errors import Conflict, DomainNotVerified, NotFound, ValidationError
from config.ids import random_token
from domains import checks, crypto, dns, records, selectors, spf
from domains.dkim import generate_key, new_selector
from domains.models import DkimKey, DkimKeyStatus, Domain, DomainStatus
from domains.names import InvalidDomain, lookup_form, normalize_sending_domain, to_unicode, validate_label

# Unverified domains (new, failed, or just lost their records) are re-checked this often for
# this long, then only on demand; verified ones once a day.
RECHECK_WINDOW = timedelta(hours=72)
RECHECK_INTERVAL = timedelta(minutes=15)
VERIFIED_RECHECK_INTERVAL = timedelta(hours=24)
# A beat sweep pushes a claimed domain's next check this far out, so a lost task is retried
# after it rather than piling up duplicate checks while one is queued.
CLAIM_LEASE = timedelta(minutes=10)
DEFAULT_RETURN_PATH_SUBDOMAIN = "bounces"

_UNSET = object()


# --- The sending pipeline's check -----------------------------------------------------------

def domain_check_sender(*, subaccount, environment: str, from_domain: str) -> None:
    """Refuse live mail from a domain this sub-account has not verified (one indexed query).

    Test keys never need a verified domain, nor does anything when the operator turned
    ``MAILROOM_REQUIRE_VERIFIED_DOMAIN`` off. A domain in ``temporary_failure`` that was
    verified still sends: our resolver failing is no reason to stop a tenant's mail.
    """
    if environment != "live" or not settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN:
        return
    name = lookup_form(from_domain)
    subaccount_id = getattr(subaccount, "pk", subaccount)
    if name and Domain.objects.filter(subaccount_id=subaccount_id, name=name, verified_at__isnull=False).exists():
        return
    message = (f"The domain {from_domain} is not verified for this sub-account. Add it with POST /domains, "
               "publish its DNS records and verify it, or send with a test key.")
    raise DomainNotVerified(message, details={"from": [message]})


# --- Adding, changing, deleting -------------------------------------------------------------

def _field_error(field: str, message: str) -> ValidationError:
    return ValidationError("The domain is invalid.", details={field: [message]})


def _label(value: str | None, *, field: str) -> str:
    if not value:
        return ""
    try:
        return validate_label(value, field=field)
    except InvalidDomain as exc:
        raise _field_error(field, str(exc)) from exc


def _existing_spf_state(name: str) -> dict:
    """What SPF the domain already publishes, to say "merge, don't add a second record" at once.

    Best effort: when DNS does not answer, the first verification says it instead.
    """
    try:
        answer = dns.txt(name)
    except dns.DnsTemporaryError:
        return {}
    found = spf.spf_records(answer.values)
    if not found:
        return {}
    include = settings.MAILROOM_SPF_INCLUDE
    merged = spf.merge_include(found[0], include)
    if merged == found[0]:
        note = f"The existing SPF record already includes {include}."
    else:
        note = (f"{name} already has an SPF record: replace it with the value shown (your record with "
                f"include:{include} added) rather than publishing a second one; a domain may have only one.")
    return {records.SPF: {"status": records.PENDING, "found": found, "error": None, "note": note,
                          "value": merged, "checked_at": timezone.now().isoformat()}}


def domain_add(*, subaccount, domain: str, return_path_subdomain: str | None = None,
               tracking_subdomain: str | None = None, track_opens: bool | None = None,
               track_clicks: bool | None = None) -> Domain:
    try:
        name = normalize_sending_domain(domain)
    except InvalidDomain as exc:
        raise _field_error("domain", str(exc)) from exc
    return_path = _label(return_path_subdomain, field="return_path_subdomain") or DEFAULT_RETURN_PATH_SUBDOMAIN
    tracking = _label(tracking_subdomain, field="tracking_subdomain")
    if tracking and tracking == return_path:
        raise _field_error("tracking_subdomain", "The tracking and return-path subdomains must differ.")
    if subaccount.domains.filter(name=name).exists():
        raise Conflict(f"{to_unicode(name)} is already a domain of this sub-account.",
                       details={"domain": ["Already added."]})
    # Key generation (CPU) and the SPF lookup (network) happen before the transaction.
    key = generate_key()
    record_states = _existing_spf_state(name)
    now = timezone.now()
    try:
        with transaction.atomic():
            created = Domain.objects.create(
                subaccount=subaccount, name=name, verification_token=random_token(32),
                return_path_subdomain=return_path, tracking_subdomain=tracking,
                track_opens=track_opens, track_clicks=track_clicks, record_states=record_states,
                recheck_until=now + RECHECK_WINDOW, next_check_at=now + RECHECK_INTERVAL,
            )
            DkimKey.objects.create(domain=created, selector=new_selector(), status=DkimKeyStatus.ACTIVE,
                                   public_key=key.public_key_b64, activated_at=now,
                                   private_key_encrypted=crypto.encrypt(key.private_key_pem))
    except IntegrityError as exc:  # the same name added twice at once
        raise Conflict(f"{to_unicode(name)} is already a domain of this sub-account.",
                       details={"domain": ["Already added."]}) from exc
    selectors.domain_tracking_forget(subaccount_id=created.subaccount_id, domain=created.name)
    return _reload(created)


def domain_update(*, domain: Domain, track_opens=_UNSET, track_clicks=_UNSET, tracking_subdomain=_UNSET) -> Domain:
    """The domain's tracking settings; ``None`` for a track_* flag means "as the sub-account"."""
    with transaction.atomic():
        locked = Domain.objects.select_for_update().get(pk=domain.pk)
        fields = ["updated_at"]
        if track_opens is not _UNSET:
            locked.track_opens = track_opens
            fields.append("track_opens")
        if track_clicks is not _UNSET:
            locked.track_clicks = track_clicks
            fields.append("track_clicks")
        if tracking_subdomain is not _UNSET:
            label = _label(tracking_subdomain, field="tracking_subdomain")
            if label and label == locked.return_path_subdomain:
                raise _field_error("tracking_subdomain", "The tracking and return-path subdomains must differ.")
            if label != locked.tracking_subdomain:
                locked.tracking_subdomain = label
                locked.record_states = {k: v for k, v in locked.record_states.items() if k != records.TRACKING}
                fields += ["tracking_subdomain", "record_states"]
        locked.save(update_fields=fields)
    selectors.domain_tracking_forget(subaccount_id=locked.subaccount_id, domain=locked.name)
    return _reload(locked)


def domain_delete(*, domain: Domain) -> None:
    subaccount_id, name = domain.subaccount_id, domain.name
    domain.delete()
    selectors.dkim_signing_key_forget(subaccount_id=subaccount_id, domain=name)
    selectors.domain_tracking_forget(subaccount_id=subaccount_id, domain=name)


def _reload(domain: Domain) -> Domain:
    return selectors._with_live_keys(Domain.objects.filter(pk=domain.pk)).get()


# --- DKIM rotation ---------------------------------------------------------------------------

def domain_dkim_rotate(*, domain: Domain) -> Domain:
    """Publish a new selector beside the current one. The current key signs until the new
    record is found by a verification; then the new key signs and the old one retires.

    Rotating again before the new record verified replaces the waiting key.
    """
    key = generate_key()
    now = timezone.now()
    with transaction.atomic():
        locked = Domain.objects.select_for_update().filter(pk=domain.pk).first()
        if locked is None:
            raise NotFound("Domain not found.")
        replaced = list(locked.dkim_keys.filter(status=DkimKeyStatus.PENDING).values_list("selector", flat=True))
        locked.dkim_keys.filter(status=DkimKeyStatus.PENDING).delete()
        taken = set(locked.dkim_keys.values_list("selector", flat=True))
        selector = new_selector()
        while selector in taken:
            selector = new_selector()
        DkimKey.objects.create(domain=locked, selector=selector, status=DkimKeyStatus.PENDING,
                               public_key=key.public_key_b64,
                               private_key_encrypted=crypto.encrypt(key.private_key_pem))
        stale = {f"{records.DKIM}:{s}" for s in replaced}
        locked.record_states = {k: v for k, v in locked.record_states.items() if k not in stale}
        # Look for the new record often, so it takes over soon after it is published.
        soon = now + RECHECK_INTERVAL
        if locked.next_check_at is None or locked.next_check_at > soon:
            locked.next_check_at = soon
        locked.save(update_fields=["record_states", "next_check_at", "updated_at"])
    return _reload(locked)


# --- Verification ----------------------------------------------------------------------------

def _live_keys(domain: Domain) -> list[DkimKey]:
    keys = DkimKey.objects.filter(domain_id=domain.pk).exclude(status=DkimKeyStatus.RETIRED).order_by("id")
    return sorted(keys, key=lambda k: k.status != DkimKeyStatus.ACTIVE)


def domain_verify(*, domain: Domain, on_demand: bool = True) -> Domain:
    """Check every record now and store what was found; moves the status and fires
    ``domain.verified`` / ``domain.failed``. ``on_demand`` (the API, the admin) also restarts
    the frequent re-checking of a domain that is not verified yet."""
    snapshot = Domain.objects.filter(pk=domain.pk).first()
    if snapshot is None:
        raise NotFound("Domain not found.")
    expected = records.expected_records(snapshot, _live_keys(snapshot))
    results = checks.check_records(snapshot.name, expected)  # network: no transaction open
    now = timezone.now()
    with transaction.atomic():
        locked = Domain.objects.select_for_update().filter(pk=domain.pk).first()
        if locked is None:
            raise NotFound("Domain not found.")
        _store_results(locked, expected, results, now=now, on_demand=on_demand)
    selectors.dkim_signing_key_forget(subaccount_id=locked.subaccount_id, domain=locked.name)
    selectors.domain_tracking_forget(subaccount_id=locked.subaccount_id, domain=locked.name)  # the tracking host
    return _reload(locked)


def _store_results(domain: Domain, checked: list[records.ExpectedRecord], results: dict, *, now,
                   on_demand: bool) -> None:
    checked_at = now.isoformat()
    keys = _live_keys(domain)
    current = {r.key: r for r in records.expected_records(domain, keys)}
    # Keep only states of records still expected; take a result only for a record that is
    # still the one that was checked (same name and type).
    states = {k: v for k, v in (domain.record_states or {}).items() if k in current}
    for record in checked:
        now_expected = current.get(record.key)
        if now_expected and (now_expected.name, now_expected.type) == (record.name, record.type):
            states[record.key] = results[record.key].as_state(checked_at)
    domain.record_states = states

    _promote_verified_rotation(domain, keys, states, now=now)
    current = records.expected_records(domain, _live_keys(domain))
    domain.record_states = {k: v for k, v in states.items() if k in {r.key for r in current}}

    def state_of(purpose: str) -> str:
        record = next((r for r in current if r.purpose == purpose and r.required), None)
        if record is None:
            record = next((r for r in current if r.purpose == purpose), None)
        return domain.record_states.get(record.key, {}).get("status", records.PENDING) if record else records.PENDING

    domain.ownership_verified = state_of(records.VERIFICATION) == records.VERIFIED
    domain.spf_verified = state_of(records.SPF) == records.VERIFIED
    domain.dkim_verified = state_of(records.DKIM) == records.VERIFIED
    domain.dmarc_verified = state_of(records.DMARC) == records.VERIFIED
    domain.return_path_verified = state_of(records.RETURN_PATH) == records.VERIFIED
    domain.last_checked_at = now

    required = [(r, domain.record_states.get(r.key, {})) for r in current if r.required]
    problems = [s.get("error") or f"{r.name}: {s.get('status')}" for r, s in required
                if s.get("status") != records.VERIFIED]
    statuses = {s.get("status", records.PENDING) for _, s in required}
    if statuses == {records.VERIFIED}:
        outcome = DomainStatus.VERIFIED
    elif statuses & {records.MISSING, records.INVALID}:
        outcome = DomainStatus.FAILED
    else:
        outcome = DomainStatus.TEMPORARY_FAILURE
    _transition(domain, outcome, problems, now=now, on_demand=on_demand)


def _promote_verified_rotation(domain: Domain, keys: list[DkimKey], states: dict, *, now) -> None:
    pending = next((k for k in keys if k.status == DkimKeyStatus.PENDING), None)
    if pending is None or states.get(f"{records.DKIM}:{pending.selector}", {}).get("status") != records.VERIFIED:
        return
    # Retire first: at most one active key per domain (a partial unique index).
    DkimKey.objects.filter(domain_id=domain.pk, status=DkimKeyStatus.ACTIVE).update(
        status=DkimKeyStatus.RETIRED, retired_at=now, private_key_encrypted="")
    DkimKey.objects.filter(pk=pending.pk).update(status=DkimKeyStatus.ACTIVE, activated_at=now)


def _transition(domain: Domain, outcome: str, problems: list[str], *, now, on_demand: bool) -> None:
    previous = domain.status
    was_sending = domain.verified_at is not None
    events: list[str] = []

    if outcome == DomainStatus.TEMPORARY_FAILURE and was_sending and domain.last_ok_at \
            and now - domain.last_ok_at > RECHECK_WINDOW:
        outcome = DomainStatus.FAILED
        problems = [f"The records could not be confirmed for {RECHECK_WINDOW.days * 24} hours.", *problems]

    if outcome == DomainStatus.VERIFIED:
        holder = Domain.objects.filter(name=domain.name, verified_at__isnull=False).exclude(pk=domain.pk).exists()
        if holder and not was_sending:
            outcome = DomainStatus.FAILED
            problems = ["Every record is in place, but this domain is verified by another account or "
                        "sub-account; it can be verified by only one at a time. Remove it there first."]
    if outcome == DomainStatus.VERIFIED:
        domain.status = DomainStatus.VERIFIED
        domain.last_ok_at = now
        domain.last_error = ""
        domain.failed_at = None
        if not was_sending:
            domain.verified_at = now
            events.append("domain.verified")
    elif outcome == DomainStatus.FAILED:
        domain.status = DomainStatus.FAILED
        domain.verified_at = None
        domain.last_error = " ".join(problems)
        if previous != DomainStatus.FAILED:
            domain.failed_at = now
            events.append("domain.failed")
        if was_sending:
            # A domain that lost its records is watched closely for a while: it may come back.
            domain.recheck_until = now + RECHECK_WINDOW
    else:
        domain.status = DomainStatus.TEMPORARY_FAILURE
        domain.last_error = " ".join(problems)

    if on_demand and domain.verified_at is None:
        domain.recheck_until = max(filter(None, [domain.recheck_until, now + RECHECK_WINDOW]))
    domain.next_check_at = _next_check(domain, now=now)
    try:
        with transaction.atomic():
            domain.save()
    except IntegrityError:
        # Another sub-account verified the same name between our check and this save.
        domain.status, domain.verified_at = DomainStatus.FAILED, None
        domain.last_error = "This domain was just verified by another account or sub-account."
        events = [] if previous == DomainStatus.FAILED else ["domain.failed"]
        domain.failed_at = domain.failed_at or now
        domain.save()
    for event_type in events:
        _publish_event(domain, event_type, previous)


def _next_check(domain: Domain, *, now):
    rotation_started = (DkimKey.objects.filter(domain_id=domain.pk, status=DkimKeyStatus.PENDING)
                        .values_list("created_at", flat=True).first())
    watching_rotation = rotation_started is not None and now - rotation_started < RECHECK_WINDOW
    if domain.status == DomainStatus.VERIFIED:
        return now + (RECHECK_INTERVAL if watching_rotation else VERIFIED_RECHECK_INTERVAL)
    if domain.verified_at is not None:  # temporary failure of a verified domain: retry soon
        return now + RECHECK_INTERVAL
    if domain.recheck_until and now < domain.recheck_until:
        return now + RECHECK_INTERVAL
    return None


def _publish_event(domain: Domain, event_type: str, previous_status: str) -> None:
    # Imported here: the webhooks app depends on ours, not the other way round. Called inside
    # the transaction that changed the status, so the event is recorded if and only if the
    # change is (webhook delivery itself is enqueued by the webhooks app after commit).
    from webhooks.services import webhook_events_publish

    failing = [
        {"purpose": r["purpose"], "name": r["name"], "status": r["status"], "error": r["error"]}
        for r in records.dns_records(domain) if r["required"] and r["status"] != records.VERIFIED
    ]
    webhook_events_publish(subaccount_id=domain.subaccount_id, event_type=event_type, data={
        "id": domain.public_id,
        "domain": domain.name,
        "status": domain.status,
        "previous_status": previous_status,
        "spf_verified": domain.spf_verified,
        "dkim_verified": domain.dkim_verified,
        "dmarc_verified": domain.dmarc_verified,
        "error": domain.last_error or None,
        "failing_records": failing,
        "checked_at": domain.last_checked_at.isoformat() if domain.last_checked_at else None,
    })


# --- Periodic re-checks ------------------------------------------------------------------------

def domains_claim_due(*, now=None, limit: int = 500) -> list[int]:
    """Ids of domains whose check is due, each pushed out by a lease so the next sweep does
    not enqueue it again while its check waits in the queue."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(Domain.objects.select_for_update(skip_locked=True).filter(next_check_at__lte=now)
                   .order_by("next_check_at").values_list("id", flat=True)[:limit])
        Domain.objects.filter(id__in=ids).update(next_check_at=now + CLAIM_LEASE)
    return ids


# --- Encryption key rotation -----------------------------------------------------------------

def dkim_keys_reencrypt(*, batch_size: int = 500) -> int:
    """Re-encrypt every stored private key under the newest MAILROOM_ENCRYPTION_KEYS key."""
    count = 0
    queryset = DkimKey.objects.exclude(private_key_encrypted="").order_by("id")
    last_id = 0
    while True:
        batch = list(queryset.filter(id__gt=last_id)[:batch_size])
        if not batch:
            return count
        for key in batch:
            key.private_key_encrypted = crypto.reencrypt(key.private_key_encrypted)
        DkimKey.objects.bulk_update(batch, ["private_key_encrypted"])
        count += len(batch)
        last_id = batch[-1].id
