"""What the sending pipeline asks: may this sub-account send live mail from this domain?"""

import pytest

from config.api.errors import DomainNotVerified
from domains import selectors
from domains.models import Domain
from domains.services import domain_check_sender


@pytest.fixture
def verified(add_domain, api, tenants, dns_server):
    data = add_domain(tenants.a1, "bücher.example")
    dns_server.publish(data["dns_records"])
    assert api(tenants.a1.live_key).post("/api/v1/domains/bücher.example/verify").json()["data"]["status"] == "verified"
    return data


def test_live_mail_from_a_verified_domain_passes_in_one_query(verified, tenants, django_assert_num_queries):
    with django_assert_num_queries(1):
        domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain="xn--bcher-kva.example")
    domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain="BÜCHER.example")


def test_live_mail_from_an_unverified_domain_is_refused(add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    for name in ("example.com", "sub.example.com", "unknown.example", "not a domain", ""):
        with pytest.raises(DomainNotVerified) as caught:
            domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain=name)
        message = (f"The domain {name} is not verified for this sub-account. Add it with POST /domains, "
                   "publish its DNS records and verify it, or send with a test key.")
        assert caught.value.message == message
        assert caught.value.details == {"from": [message]}
        assert caught.value.code == "domain_not_verified" and caught.value.status == 422


def test_another_tenants_verified_domain_does_not_count(verified, tenants):
    for other in (tenants.a2, tenants.b1):
        with pytest.raises(DomainNotVerified):
            domain_check_sender(subaccount=other.subaccount, environment="live", from_domain="bücher.example")


def test_test_keys_never_need_a_verified_domain(tenants, django_assert_num_queries):
    with django_assert_num_queries(0):
        domain_check_sender(subaccount=tenants.a1.subaccount, environment="test", from_domain="unknown.example")


def test_the_operator_may_turn_the_requirement_off(tenants, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    domain_check_sender(subaccount=tenants.a1.subaccount, environment="live", from_domain="unknown.example")


def test_tracking_defaults_come_from_the_domain_then_the_subaccount(add_domain, tenants):
    subaccount = tenants.a1.subaccount
    subaccount.track_opens, subaccount.track_clicks = True, True
    add_domain(tenants.a1, "example.com", track_clicks=False)
    assert selectors.domain_tracking_defaults(subaccount=subaccount, from_domain="Example.com") == (True, False)
    assert selectors.domain_tracking_defaults(subaccount=subaccount, from_domain="other.example") == (True, True)


def test_insights_warnings_come_from_the_last_check(add_domain, api, tenants, dns_server):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"], skip=["dmarc", "spf"])
    api(tenants.a1.live_key).post("/api/v1/domains/example.com/verify")
    warnings = selectors.domain_authentication_warnings(subaccount_id=tenants.a1.subaccount.pk,
                                                        domain="example.com")
    assert [w["code"] for w in warnings] == ["spf_not_verified", "dmarc_not_verified"]
    assert warnings[0]["message"].startswith("SPF for example.com is missing: example.com has no TXT record.")
    assert [w["code"] for w in selectors.domain_authentication_warnings(
        subaccount_id=tenants.b1.subaccount.pk, domain="example.com")] == ["domain_not_added"]
    dns_server.publish(data["dns_records"])
    api(tenants.a1.live_key).post("/api/v1/domains/example.com/verify")
    assert selectors.domain_authentication_warnings(subaccount_id=tenants.a1.subaccount.pk,
                                                    domain="example.com") == []
    assert Domain.objects.get().status == "verified"
