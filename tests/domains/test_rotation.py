"""DKIM signing keys and rotation: mail stays verifiable (dkimpy against the served keys)
before, during and after a rotation."""

import dkim
import pytest

from domains import dns as mdns
from domains import records, selectors, services
from domains.models import DkimKey, Domain
from tests.conftest import assert_ok
from tests.domains.conftest import records_by_purpose

MESSAGE = (b"From: Sender <hello@example.com>\r\nTo: someone@example.org\r\nSubject: Hi\r\n"
           b"List-Unsubscribe: <https://t.example/u/x>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
           b"\r\nHello.\r\n")


def sign(key) -> bytes:
    return dkim.sign(MESSAGE, key.selector.encode(), key.domain.encode(), key.private_key_pem,
                     include_headers=[b"from", b"to", b"subject", b"list-unsubscribe",
                                      b"list-unsubscribe-post"]) + MESSAGE


def served_txt(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's DNS hook, answered by the loopback server through our adapter."""
    answer = mdns.txt(name.decode().rstrip("."))
    return answer.values[0].encode() if answer.exists else None


def verifies(signed: bytes) -> bool:
    return dkim.verify(signed, dnsfunc=served_txt)


@pytest.fixture
def verified_domain(add_domain, api, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    assert assert_ok(api(tenants.a1.live_key).post("/api/v1/domains/example.com/verify"))["status"] == "verified"
    return data


def signing_key(tenants):
    selectors.dkim_signing_key_forget()  # as another process would see it once its cache expires
    return selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="Example.com")


def test_rotation_keeps_mail_verifiable_before_during_and_after(verified_domain, api, tenants, dns_server):
    client = api(tenants.a1.live_key)
    old = signing_key(tenants)
    old_selector = records_by_purpose(verified_domain)["dkim"]["selector"]
    assert (old.domain, old.selector) == ("example.com", old_selector)
    before = sign(old)
    assert verifies(before)

    # During: a second record to publish; the old key still signs.
    rotating = assert_ok(client.post("/api/v1/domains/example.com/rotate-dkim"))
    dkims = [r for r in rotating["dns_records"] if r["purpose"] == "dkim"]
    assert [(r["selector"], r["required"], r["status"]) for r in dkims] == [
        (old_selector, True, "verified"), (dkims[1]["selector"], False, "pending")]
    new_record = dkims[1]
    assert new_record["selector"] != old_selector
    assert signing_key(tenants).selector == old_selector
    checked = assert_ok(client.post("/api/v1/domains/example.com/verify"))  # new record not published yet
    assert checked["status"] == "verified"
    assert records_by_purpose(checked)["dkim_pending"]["status"] == "missing"
    assert signing_key(tenants).selector == old_selector
    during = sign(signing_key(tenants))
    assert verifies(during)

    # After: the new record is published (beside the old) and verifies; the new key signs.
    dns_server.set_txt(new_record["name"], new_record["value"])
    after_check = assert_ok(client.post("/api/v1/domains/example.com/verify"))
    assert after_check["status"] == "verified"
    assert [(r["selector"], r["required"], r["status"]) for r in after_check["dns_records"]
            if r["purpose"] == "dkim"] == [(new_record["selector"], True, "verified")]
    new = signing_key(tenants)
    assert new.selector == new_record["selector"]
    after = sign(new)
    assert verifies(after)
    # Mail signed before the switch still verifies while the old record stays published.
    assert verifies(before) and verifies(during)

    old_row = DkimKey.objects.get(selector=old_selector)
    assert old_row.status == "retired" and old_row.retired_at and old_row.private_key_encrypted == ""
    assert DkimKey.objects.get(selector=new_record["selector"]).status == "active"


def test_a_signature_fails_when_the_served_key_is_not_the_signing_key(verified_domain, tenants, dns_server):
    signed = sign(signing_key(tenants))
    other = services.domain_add(subaccount=tenants.a2.subaccount, domain="other.example")
    other_value = next(r["value"] for r in records.dns_records(other) if r["purpose"] == "dkim")
    dns_server.set_txt(records_by_purpose(verified_domain)["dkim"]["name"], other_value)
    assert not verifies(signed)


def test_rotating_twice_before_publishing_replaces_the_waiting_key(verified_domain, api, tenants):
    client = api(tenants.a1.live_key)
    first = records_by_purpose(assert_ok(client.post("/api/v1/domains/example.com/rotate-dkim")))["dkim_pending"]
    second = records_by_purpose(assert_ok(client.post("/api/v1/domains/example.com/rotate-dkim")))["dkim_pending"]
    assert first["selector"] != second["selector"]
    assert sorted(DkimKey.objects.values_list("status", flat=True)) == ["active", "pending"]


def test_a_rotation_is_looked_for_often_until_it_verifies(verified_domain, api, tenants):
    domain = Domain.objects.get()
    assert domain.next_check_at - domain.last_checked_at > services.RECHECK_INTERVAL
    assert_ok(api(tenants.a1.live_key).post("/api/v1/domains/example.com/rotate-dkim"))
    domain.refresh_from_db()
    assert domain.next_check_at - domain.last_checked_at < services.RECHECK_INTERVAL * 2


def test_the_signing_key_is_cached_in_process_memory(verified_domain, tenants, django_assert_num_queries):
    key = signing_key(tenants)
    with django_assert_num_queries(0):
        for _ in range(100):
            assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="example.com") is key


def test_the_signing_key_is_the_tenants_own(verified_domain, tenants):
    assert selectors.dkim_signing_key(subaccount_id=tenants.b1.subaccount.pk, domain="example.com") is None
    assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="unknown.example") is None
    assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="not a domain") is None


def test_deleting_the_domain_forgets_its_key_at_once(verified_domain, tenants):
    assert signing_key(tenants) is not None
    services.domain_delete(domain=Domain.objects.get())
    assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="example.com") is None


def test_other_processes_see_a_change_when_their_cache_expires(verified_domain, tenants, monkeypatch):
    assert signing_key(tenants) is not None
    Domain.objects.all().delete()  # as another process would: this one's cache is not told
    assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="example.com") is not None
    monkeypatch.setattr(selectors, "SIGNING_KEY_CACHE_SECONDS", 0.0)
    selectors.dkim_signing_key_forget()
    assert selectors.dkim_signing_key(subaccount_id=tenants.a1.subaccount.pk, domain="example.com") is None
