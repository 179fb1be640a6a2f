"""The DNS records a domain must publish, and how each is shown with its last check.

One source for the verifier (what to look up and expect), the API, the admin and the email
insights, so they can never disagree about a record's name or value.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from domains.models import DkimKey, DkimKeyStatus, Domain

VERIFICATION, SPF, DKIM, DMARC, RETURN_PATH, TRACKING = (
    "verification", "spf", "dkim", "dmarc", "return_path", "tracking")

# Per-record states.
PENDING, VERIFIED, MISSING, INVALID, TEMPORARY_FAILURE = (
    "pending", "verified", "missing", "invalid", "temporary_failure")

OWNERSHIP_LABEL = "_mailroom"
DMARC_SUGGESTION = "v=DMARC1; p=none;"
TXT_STRING_MAX = 255


@dataclass(frozen=True)
class ExpectedRecord:
    key: str  # its entry in Domain.record_states
    purpose: str
    type: str
    name: str
    value: str
    required: bool
    selector: str | None = None


def ownership_value(token: str) -> str:
    return f"mailroom-verification={token}"


def dkim_value(public_key_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_b64}"


def dkim_record_name(selector: str, domain_name: str) -> str:
    return f"{selector}._domainkey.{domain_name}"


def default_spf_value() -> str:
    return f"v=spf1 include:{settings.MAILROOM_SPF_INCLUDE} ~all"


def zone_value(record_type: str, value: str) -> str:
    """The value as a zone file (or Route 53) wants it: TXT data in quoted strings of at most
    255 bytes; a 2048-bit DKIM key needs two (RFC 1035 3.3.14, DESIGN section 7)."""
    if record_type != "TXT":
        return value.rstrip(".") + "."
    chunks = [value[i:i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def live_keys(domain: Domain) -> list[DkimKey]:
    """The active and pending keys, active first (uses a prefetch when there is one)."""
    keys = [k for k in domain.dkim_keys.all() if k.status != DkimKeyStatus.RETIRED]
    return sorted(keys, key=lambda k: (k.status != DkimKeyStatus.ACTIVE, k.pk or 0))


def expected_records(domain: Domain, keys: Iterable[DkimKey] | None = None) -> list[ExpectedRecord]:
    keys = live_keys(domain) if keys is None else list(keys)
    states = domain.record_states or {}
    records = [
        ExpectedRecord(VERIFICATION, VERIFICATION, "TXT", f"{OWNERSHIP_LABEL}.{domain.name}",
                       ownership_value(domain.verification_token), True),
        ExpectedRecord(SPF, SPF, "TXT", domain.name,
                       states.get(SPF, {}).get("value") or default_spf_value(), True),
    ]
    for key in keys:
        # The pending key of a rotation is not required: the active one keeps the domain
        # verified (and signing) until the new record is found.
        records.append(ExpectedRecord(
            f"{DKIM}:{key.selector}", DKIM, "TXT", dkim_record_name(key.selector, domain.name),
            dkim_value(key.public_key), key.status == DkimKeyStatus.ACTIVE, selector=key.selector))
    records.append(ExpectedRecord(DMARC, DMARC, "TXT", f"_dmarc.{domain.name}", DMARC_SUGGESTION, False))
    records.append(ExpectedRecord(RETURN_PATH, RETURN_PATH, "CNAME",
                                  f"{domain.return_path_subdomain}.{domain.name}",
                                  settings.MAILROOM_RETURN_PATH_HOST, True))
    if domain.tracking_subdomain:
        records.append(ExpectedRecord(TRACKING, TRACKING, "CNAME", f"{domain.tracking_subdomain}.{domain.name}",
                                      settings.MAILROOM_TRACKING_HOST, False))
    return records


def dns_records(domain: Domain) -> list[dict]:
    """What the API shows: each record to publish, its state and what the last check found."""
    states = domain.record_states or {}
    shown = []
    for record in expected_records(domain):
        state = states.get(record.key, {})
        shown.append({
            "type": record.type,
            "name": record.name,
            "value": record.value,
            "zone_value": zone_value(record.type, record.value),
            "purpose": record.purpose,
            "required": record.required,
            "selector": record.selector,
            "status": state.get("status", PENDING),
            "found": state.get("found", []),
            "error": state.get("error"),
            "note": state.get("note"),
            "checked_at": state.get("checked_at"),
        })
    return shown


def warnings(domain: Domain) -> list[str]:
    """Problems that do not stop verification (a missing DMARC record, a broken tracking CNAME)."""
    states = domain.record_states or {}
    found = []
    for record in expected_records(domain):
        state = states.get(record.key, {})
        if record.required or state.get("status") in (None, PENDING, VERIFIED):
            continue
        found.append(state.get("error") or f"The {record.purpose} record {record.name} is not in place.")
    return found
