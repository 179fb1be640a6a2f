"""Checking a domain's records against DNS. No database access here: the verifier service
snapshots what to expect, calls :func:`check_records` outside any transaction, and stores
the results afterwards."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

from domains import dns, records, spf
from domains.names import organizational_domain
from domains.records import ExpectedRecord


@dataclass
class RecordResult:
    status: str
    found: list[str] = field(default_factory=list)
    error: str | None = None
    note: str | None = None
    # A better value to publish than the default (our include merged into an existing SPF).
    value: str | None = None

    def as_state(self, checked_at: str) -> dict:
        state = {"status": self.status, "found": self.found, "error": self.error, "note": self.note,
                 "checked_at": checked_at}
        if self.value:
            state["value"] = self.value
        return state


def check_records(domain_name: str, expected: list[ExpectedRecord]) -> dict[str, RecordResult]:
    """Check every record at once: the questions are independent, and in a row a slow zone
    would cost several timeouts where it now costs about one."""
    if not expected:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(expected)), thread_name_prefix="dns-check") as pool:
        futures = {record.key: pool.submit(check_record, domain_name, record) for record in expected}
        return {key: future.result() for key, future in futures.items()}


def check_record(domain_name: str, record: ExpectedRecord) -> RecordResult:
    checker = {
        records.VERIFICATION: _check_exact_txt,
        records.SPF: _check_spf,
        records.DKIM: _check_dkim,
        records.DMARC: _check_dmarc,
        records.RETURN_PATH: _check_cname,
        records.TRACKING: _check_cname,
    }[record.purpose]
    try:
        return checker(domain_name, record, dns.make_resolver())
    except dns.DnsTemporaryError as exc:
        return RecordResult(records.TEMPORARY_FAILURE, error=f"{exc} This is retried automatically.")


def _check_exact_txt(domain_name: str, record: ExpectedRecord, resolver) -> RecordResult:
    answer = dns.txt(record.name, resolver=resolver)
    if not answer.exists:
        return RecordResult(records.MISSING, error=f"{answer.describe_absence()} Publish TXT {record.value!r}.")
    if any(value.strip() == record.value for value in answer.values):
        return RecordResult(records.VERIFIED, found=list(answer.values))
    return RecordResult(records.INVALID, found=list(answer.values),
                        error=f"{record.name} has TXT records, but none is {record.value!r}.")


def _check_spf(domain_name: str, record: ExpectedRecord, resolver) -> RecordResult:
    include = settings.MAILROOM_SPF_INCLUDE
    answer = dns.txt(domain_name, resolver=resolver)
    found = spf.spf_records(answer.values)
    if not found:
        reason = answer.describe_absence() if not answer.exists else f"{domain_name} has no SPF record."
        return RecordResult(records.MISSING, error=f"{reason} Publish TXT {records.default_spf_value()!r}.",
                            value=records.default_spf_value())
    merged = spf.merge_include(found[0], include)
    if len(found) > 1:
        return RecordResult(records.INVALID, found=found, value=merged,
                            error=f"{domain_name} publishes {len(found)} SPF records; receivers treat that as "
                                  "a permerror. Keep one record, with every sender in it.",
                            note=f"Merge them into one record: {merged!r}.")

    def fetch(name: str) -> list[str] | None:
        nested = dns.txt(name, resolver=resolver)
        return list(nested.values) if nested.exists else None

    try:
        evaluation = spf.evaluate(found[0], domain=domain_name, platform_include=include, fetch=fetch)
    except spf.SpfError as exc:
        return RecordResult(records.INVALID, found=found, error=str(exc), value=merged)
    if not evaluation.includes_platform:
        return RecordResult(
            records.INVALID, found=found, value=merged,
            error=f"The SPF record does not include {include}.",
            note=f"An SPF record already exists: add include:{include} to it rather than publishing a "
                 f"second one (a domain may only have one). Replace it with {merged!r}.")
    if found[0] == records.default_spf_value():
        return RecordResult(records.VERIFIED, found=found)
    # The tenant's own record (with our include in it) is the one to keep publishing.
    return RecordResult(records.VERIFIED, found=found, value=found[0],
                        note=f"Uses {evaluation.lookups} of the {spf.MAX_DNS_LOOKUPS} DNS lookups SPF allows.")


def _dkim_tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(tag_value.split())
    return tags


def _check_dkim(domain_name: str, record: ExpectedRecord, resolver) -> RecordResult:
    answer = dns.txt(record.name, resolver=resolver)
    if not answer.exists:
        return RecordResult(records.MISSING, error=f"{answer.describe_absence()} Publish the DKIM TXT record "
                                                   f"(it is longer than 255 bytes: split it into several strings).")
    expected_key = _dkim_tags(record.value)["p"]
    found = list(answer.values)
    keys = [_dkim_tags(v) for v in found if "p=" in v]
    if not keys:
        return RecordResult(records.INVALID, found=found, error=f"{record.name} has TXT records but no DKIM key (p=).")
    for tags in keys:
        if tags.get("v", "DKIM1") != "DKIM1":
            continue
        if tags.get("p") == expected_key:
            return RecordResult(records.VERIFIED, found=found)
    if all(not tags.get("p") for tags in keys):
        return RecordResult(records.INVALID, found=found, error=f"The DKIM key at {record.name} is revoked (empty p=).")
    return RecordResult(records.INVALID, found=found,
                        error=f"The DKIM key published at {record.name} does not match this domain's key; "
                              "publish the value shown here.")


def _dmarc_records(name: str, resolver) -> tuple[dns.Lookup, list[str]]:
    answer = dns.txt(name, resolver=resolver)
    return answer, [v.strip() for v in answer.values if v.strip().upper().startswith("V=DMARC1")]


def _check_dmarc(domain_name: str, record: ExpectedRecord, resolver) -> RecordResult:
    answer, found = _dmarc_records(record.name, resolver)
    note = None
    org = organizational_domain(domain_name)
    if not found and org != domain_name:
        # RFC 7489 6.6.3: a subdomain without a policy of its own falls under the
        # organizational domain's.
        _, found = _dmarc_records(f"_dmarc.{org}", resolver)
        if found:
            note = f"No DMARC record of its own; the policy of {org} applies."
    if not found:
        reason = answer.describe_absence() if not answer.exists else f"{record.name} has no DMARC record."
        return RecordResult(records.MISSING,
                            error=f"{reason} Mail still verifies, but publishing TXT {record.value!r} at "
                                  f"{record.name} lets receivers report and helps deliverability.")
    if len(found) > 1:
        return RecordResult(records.INVALID, found=found,
                            error=f"{len(found)} DMARC records found; receivers ignore DMARC when there are several.")
    return RecordResult(records.VERIFIED, found=found, note=note)


def _check_cname(domain_name: str, record: ExpectedRecord, resolver) -> RecordResult:
    answer = dns.cname(record.name, resolver=resolver)
    expected = record.value.rstrip(".").lower()
    if not answer.exists:
        return RecordResult(records.MISSING,
                            error=f"{answer.describe_absence()} Publish CNAME {record.name} -> {expected}.")
    found = list(answer.values)
    if expected in found:
        return RecordResult(records.VERIFIED, found=found)
    return RecordResult(records.INVALID, found=found,
                        error=f"{record.name} points to {', '.join(found)}, not {expected}.")
