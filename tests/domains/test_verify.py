"""Verification against the real loopback DNS server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.api.errors import DomainNotVerified
from domains import services
from domains.models import Domain
from tests.conftest import assert_error, assert_ok
from tests.domains.conftest import records_by_purpose


@pytest.fixture
def verify(api):
    def run(tenant, name: str) -> dict:
        return assert_ok(api(tenant.live_key).post(f"/api/v1/domains/{name}/verify"))
    return run


def test_it_verifies_when_every_record_is_published(add_domain, verify, tenants, dns_server, published_events):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "verified"
    assert checked["can_send"] is True
    assert (checked["ownership_verified"], checked["spf_verified"], checked["dkim_verified"],
            checked["dmarc_verified"], checked["return_path_verified"]) == (True, True, True, True, True)
    assert {r["status"] for r in checked["dns_records"]} == {"verified"}
    found = records_by_purpose(checked)
    assert found["dkim"]["found"] == [found["dkim"]["value"]]  # the split strings, joined
    assert found["return_path"]["found"] == ["bounces.mailroom.local"]
    assert checked["warnings"] == [] and checked["last_error"] == ""
    assert checked["last_checked_at"] and checked["verified_at"]
    domain = Domain.objects.get()
    assert [(e["event_type"], e["subaccount_id"], e["data"]["domain"], e["data"]["status"])
            for e in published_events] == [("domain.verified", domain.subaccount_id, "example.com", "verified")]
    assert published_events[0]["data"]["id"] == domain.public_id
    # Checking again changes nothing and fires nothing.
    verify(tenants.a1, "example.com")
    assert len(published_events) == 1


@pytest.mark.parametrize("missing", ["verification", "spf", "dkim", "return_path"])
def test_every_required_record_is_needed(add_domain, verify, tenants, dns_server, published_events, missing):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=[missing])
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "failed"
    assert checked["can_send"] is False
    states = {r["purpose"]: r["status"] for r in checked["dns_records"]}
    assert states.pop(missing) == "missing"
    assert set(states.values()) == {"verified"}
    assert checked["last_error"]
    assert [e["event_type"] for e in published_events] == ["domain.failed"]
    assert published_events[0]["data"]["failing_records"][0]["purpose"] == missing


def test_a_missing_record_says_what_was_not_found(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["return_path"])
    rp = records_by_purpose(verify(tenants.a1, "example.com"))["return_path"]
    assert rp["error"] == ("bounces.example.com does not exist (NXDOMAIN). "
                           "Publish CNAME bounces.example.com -> bounces.mailroom.local.")
    assert rp["found"] == []


def test_a_wrong_dkim_key_fails_and_shows_what_was_found(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    other = add_domain(tenants.a2, "other.example")
    dns_server.publish(data["dns_records"], skip=["dkim"])
    wrong = records_by_purpose(other)["dkim"]["value"]
    dns_server.set_txt(records_by_purpose(data)["dkim"]["name"], wrong)
    checked = verify(tenants.a1, "example.com")
    dkim = records_by_purpose(checked)["dkim"]
    assert checked["status"] == "failed" and checked["dkim_verified"] is False
    assert dkim["status"] == "invalid"
    assert dkim["found"] == [wrong]
    assert dkim["error"] == (f"The DKIM key published at {dkim['name']} does not match this domain's key; "
                             "publish the value shown here.")


def test_a_dkim_record_behind_a_cname_verifies(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dkim = records_by_purpose(data)["dkim"]
    dns_server.publish(data["dns_records"], skip=["dkim"])
    dns_server.set_cname(dkim["name"], "key1.dkim.provider.example")
    dns_server.set_txt("key1.dkim.provider.example", dkim["value"])
    assert records_by_purpose(verify(tenants.a1, "example.com"))["dkim"]["status"] == "verified"


def test_a_missing_dmarc_record_is_a_warning_not_a_failure(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["dmarc"])
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "verified"
    assert checked["dmarc_verified"] is False
    dmarc = records_by_purpose(checked)["dmarc"]
    assert dmarc["status"] == "missing"
    assert checked["warnings"] == [dmarc["error"]]
    assert "v=DMARC1; p=none;" in dmarc["error"]


def test_a_subdomain_inherits_the_dmarc_policy_of_its_organizational_domain(add_domain, verify, tenants,
                                                                           dns_server):
    data = add_domain(tenants.a1, "mail.example.co.uk")
    dns_server.publish(data["dns_records"], skip=["dmarc"])
    dns_server.set_txt("_dmarc.example.co.uk", "v=DMARC1; p=reject; rua=mailto:d@example.co.uk")
    dmarc = records_by_purpose(verify(tenants.a1, "mail.example.co.uk"))["dmarc"]
    assert dmarc["status"] == "verified"
    assert dmarc["found"] == ["v=DMARC1; p=reject; rua=mailto:d@example.co.uk"]
    assert dmarc["note"] == "No DMARC record of its own; the policy of example.co.uk applies."


def test_a_timeout_gives_temporary_failure(short_dns_timeout, add_domain, verify, tenants, dns_server,
                                           published_events):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    dns_server.hang()
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "temporary_failure"
    assert {r["status"] for r in checked["dns_records"]} == {"temporary_failure"}
    assert "Timed out" in records_by_purpose(checked)["spf"]["error"]
    assert published_events == []


def test_one_record_timing_out_is_temporary_while_the_rest_verify(short_dns_timeout, add_domain, verify,
                                                                  tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    dns_server.hang(records_by_purpose(data)["dkim"]["name"])
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "temporary_failure"
    assert records_by_purpose(checked)["dkim"]["status"] == "temporary_failure"
    assert records_by_purpose(checked)["spf"]["status"] == "verified"


def test_servfail_gives_temporary_failure(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    dns_server.servfail("example.com")
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "temporary_failure"
    assert records_by_purpose(checked)["spf"]["status"] == "temporary_failure"


def test_a_definite_failure_wins_over_a_temporary_one(short_dns_timeout, add_domain, verify, tenants,
                                                      dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["verification"])
    dns_server.hang("example.com")
    assert verify(tenants.a1, "example.com")["status"] == "failed"


def test_an_spf_record_without_our_include_fails_with_a_merge_note(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["spf"])
    dns_server.set_txt("example.com", "v=spf1 mx -all")
    spf = records_by_purpose(verify(tenants.a1, "example.com"))["spf"]
    assert spf["status"] == "invalid"
    assert spf["value"] == "v=spf1 mx include:spf.mailroom.local -all"
    assert spf["error"] == "The SPF record does not include spf.mailroom.local."
    assert "add include:spf.mailroom.local to it rather than publishing a second one" in spf["note"]


def test_two_spf_records_fail(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    dns_server.add_txt("example.com", "v=spf1 include:_spf.google.com ~all")
    spf = records_by_purpose(verify(tenants.a1, "example.com"))["spf"]
    assert spf["status"] == "invalid"
    assert spf["error"].startswith("example.com publishes 2 SPF records")


def test_an_spf_record_over_ten_lookups_fails(add_domain, verify, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["spf"])
    includes = []
    for n in range(5):
        dns_server.set_txt(f"spf{n}.vendor.example", "v=spf1 a mx -all")  # 1 + 2 lookups each
        includes.append(f"include:spf{n}.vendor.example")
    dns_server.set_txt("example.com", f"v=spf1 {' '.join(includes)} include:spf.mailroom.local ~all")
    spf = records_by_purpose(verify(tenants.a1, "example.com"))["spf"]
    assert spf["status"] == "invalid"
    assert spf["error"].startswith("The SPF record needs more than 10 DNS lookups")


def test_an_existing_spf_record_with_our_include_verifies_and_stays_the_value(add_domain, verify, tenants,
                                                                             dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["spf"])
    dns_server.set_txt("_spf.google.com", "v=spf1 ip4:192.0.2.0/24 ~all")
    dns_server.set_txt("spf.mailroom.local", "v=spf1 ip4:198.51.100.0/24 -all")
    record = "v=spf1 include:_spf.google.com include:spf.mailroom.local ~all"
    dns_server.set_txt("example.com", record)
    spf = records_by_purpose(verify(tenants.a1, "example.com"))["spf"]
    assert (spf["status"], spf["value"], spf["found"]) == ("verified", record, [record])
    assert spf["note"] == "Uses 2 of the 10 DNS lookups SPF allows."


def test_a_verified_domain_that_loses_its_records_fails_and_stops_live_sending(
        add_domain, verify, tenants, dns_server, published_events):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    verify(tenants.a1, "example.com")
    services.domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain="example.com")

    dns_server.remove(records_by_purpose(data)["dkim"]["name"])
    domain = services.domain_verify(domain=Domain.objects.get(), on_demand=False)  # as the beat does
    assert domain.status == "failed" and domain.verified_at is None
    assert [e["event_type"] for e in published_events] == ["domain.verified", "domain.failed"]
    assert published_events[1]["data"]["previous_status"] == "verified"
    with pytest.raises(DomainNotVerified):
        services.domain_check_sender(subaccount=tenants.a1.subaccount, environment="live",
                                     from_domain="example.com")
    # It is watched closely for a while, and comes back when the record does.
    assert domain.next_check_at - domain.last_checked_at == timedelta(minutes=15)
    dns_server.publish(data["dns_records"])
    assert services.domain_verify(domain=domain, on_demand=False).status == "verified"
    assert [e["event_type"] for e in published_events][-1] == "domain.verified"


def test_a_verified_domain_keeps_sending_through_a_dns_outage(short_dns_timeout, add_domain, verify,
                                                            tenants, dns_server, published_events):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    verify(tenants.a1, "example.com")
    dns_server.hang()
    checked = verify(tenants.a1, "example.com")
    assert checked["status"] == "temporary_failure"
    assert checked["can_send"] is True
    services.domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain="example.com")
    assert [e["event_type"] for e in published_events] == ["domain.verified"]
    # ...but not forever: after 72 hours without a confirmed check it fails.
    Domain.objects.update(last_ok_at=timezone.now() - timedelta(hours=73))
    domain = services.domain_verify(domain=Domain.objects.get(), on_demand=False)
    assert domain.status == "failed" and domain.verified_at is None
    assert domain.last_error.startswith("The records could not be confirmed for 72 hours.")
    assert [e["event_type"] for e in published_events] == ["domain.verified", "domain.failed"]


def test_the_same_domain_may_not_be_verified_by_two_accounts_at_once(add_domain, verify, tenants, dns_server,
                                                                   published_events):
    mine = add_domain(tenants.a1, "example.com")
    theirs = add_domain(tenants.b1, "example.com")
    dns_server.publish(mine["dns_records"])
    dns_server.publish([r for r in theirs["dns_records"] if r["purpose"] in ("verification", "dkim")])
    # Both sets of TXT records at the same names.
    for purpose in ("verification",):
        dns_server.set_txt(records_by_purpose(mine)[purpose]["name"], records_by_purpose(mine)[purpose]["value"],
                           records_by_purpose(theirs)[purpose]["value"])
    assert verify(tenants.a1, "example.com")["status"] == "verified"
    checked = verify(tenants.b1, "example.com")
    assert checked["status"] == "failed"
    assert checked["can_send"] is False
    assert checked["last_error"].startswith("Every record is in place, but this domain is verified by another")
    assert Domain.objects.filter(name="example.com", verified_at__isnull=False).count() == 1
    with pytest.raises(DomainNotVerified):
        services.domain_check_sender(subaccount=tenants.b1.subaccount, environment="live",
                                     from_domain="example.com")
    # Once the first lets go, the second can verify.
    services.domain_delete(domain=Domain.objects.get(subaccount=tenants.a1.subaccount))
    assert verify(tenants.b1, "example.com")["status"] == "verified"


def test_another_subaccount_of_the_same_account_cannot_verify_it_either(add_domain, verify, tenants, dns_server):
    mine = add_domain(tenants.a1, "example.com")
    sibling = add_domain(tenants.a2, "example.com")
    dns_server.publish(mine["dns_records"])
    dns_server.publish([r for r in sibling["dns_records"] if r["purpose"] == "dkim"])
    dns_server.set_txt("_mailroom.example.com", records_by_purpose(mine)["verification"]["value"],
                       records_by_purpose(sibling)["verification"]["value"])
    assert verify(tenants.a1, "example.com")["status"] == "verified"
    assert verify(tenants.a2, "example.com")["status"] == "failed"


def test_verifying_another_tenants_domain_is_not_found(add_domain, api, tenants, dns_server):
    add_domain(tenants.a1, "example.com")
    for other in (tenants.a2, tenants.b1):
        assert_error(api(other.live_key).post("/api/v1/domains/example.com/verify"), 404, "not_found")
    assert Domain.objects.get().last_checked_at is None


def test_domain_events_reach_the_tenants_webhook_endpoints(add_domain, verify, tenants, dns_server, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    import json

    from tests.webhooks.helpers import make_endpoint
    from webhooks.models import WebhookEvent

    monkeypatch.undo()  # the real webhooks.services.webhook_events_publish
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.org/in", events=["domain.verified", "domain.failed"])
    make_endpoint(tenants.b1.subaccount, "https://hooks.example.org/other")
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    with django_capture_on_commit_callbacks():
        verify(tenants.a1, "example.com")
    [event] = WebhookEvent.objects.all()
    body = json.loads(event.body)
    assert (event.event_type, body["type"], body["data"]["domain"], body["data"]["status"]) == (
        "domain.verified", "domain.verified", "example.com", "verified")
    assert event.endpoint.subaccount == tenants.a1.subaccount
