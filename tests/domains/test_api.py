"""The domains API: listing, reading, changing, deleting; tenants never see each other's."""

import pytest

from domains.models import DkimKey, Domain
from tests.conftest import assert_error, assert_ok


def test_it_lists_the_subaccounts_domains_newest_first(api, add_domain, tenants):
    add_domain(tenants.a1, "one.example")
    add_domain(tenants.a1, "two.example")
    add_domain(tenants.a2, "sibling.example")
    add_domain(tenants.b1, "other.example")
    data = assert_ok(api(tenants.a1.live_key).get("/api/v1/domains?limit=1"))
    assert [d["domain"] for d in data["domains"]] == ["two.example"]
    assert data["pagination"] == {"total": 2, "limit": 1, "offset": 0, "has_more": True}
    data = assert_ok(api(tenants.a1.test_key).get("/api/v1/domains"))
    assert [d["domain"] for d in data["domains"]] == ["two.example", "one.example"]


def test_it_filters_the_list_by_status(api, add_domain, tenants, dns_server):
    data = add_domain(tenants.a1, "one.example")
    add_domain(tenants.a1, "two.example")
    dns_server.publish(data["dns_records"])
    assert_ok(api(tenants.a1.live_key).post("/api/v1/domains/one.example/verify"))
    listed = assert_ok(api(tenants.a1.live_key).get("/api/v1/domains?status=verified"))
    assert [d["domain"] for d in listed["domains"]] == ["one.example"]
    error = assert_error(api(tenants.a1.live_key).get("/api/v1/domains?status=nope"), 422, "validation_error")
    assert list(error["details"]) == ["status"]


def test_it_gets_a_domain_by_name_or_id(api, add_domain, tenants):
    data = add_domain(tenants.a1, "example.com")
    client = api(tenants.a1.live_key)
    assert assert_ok(client.get("/api/v1/domains/example.com")) == data
    assert assert_ok(client.get(f"/api/v1/domains/{data['id']}")) == data
    assert_error(client.get("/api/v1/domains/unknown.example"), 404, "not_found")
    assert_error(client.get("/api/v1/domains/dom_nope"), 404, "not_found")
    assert_error(client.get("/api/v1/domains/not a domain"), 404, "not_found")


@pytest.mark.parametrize("other", ["a2", "b1"])
def test_another_subaccounts_domain_is_not_found_by_any_route(api, add_domain, tenants, dns_server, other):
    data = add_domain(tenants.a1, "example.com")
    client = api(getattr(tenants, other).live_key)
    for ref in ("example.com", data["id"]):
        assert_error(client.get(f"/api/v1/domains/{ref}"), 404, "not_found")
        assert_error(client.patch(f"/api/v1/domains/{ref}", {"track_opens": True}, format="json"), 404, "not_found")
        assert_error(client.post(f"/api/v1/domains/{ref}/verify"), 404, "not_found")
        assert_error(client.post(f"/api/v1/domains/{ref}/rotate-dkim"), 404, "not_found")
        assert_error(client.delete(f"/api/v1/domains/{ref}"), 404, "not_found")
    assert assert_ok(client.get("/api/v1/domains"))["domains"] == []
    domain = Domain.objects.get()
    assert domain.track_opens is None and domain.last_checked_at is None
    assert list(DkimKey.objects.values_list("status", flat=True)) == ["active"]
    assert dns_server.queries == [("example.com", "TXT", "udp")]  # only the SPF look at add time


def test_it_changes_the_tracking_settings(api, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    client = api(tenants.a1.live_key)
    data = assert_ok(client.patch("/api/v1/domains/example.com", {"track_opens": True}, format="json"))
    assert (data["track_opens"], data["track_clicks"]) == (True, None)
    data = assert_ok(client.patch("/api/v1/domains/example.com",
                                  {"track_opens": None, "track_clicks": False, "tracking_subdomain": "Links"},
                                  format="json"))
    assert (data["track_opens"], data["track_clicks"], data["tracking_subdomain"]) == (None, False, "links")
    assert data["dns_records"][-1]["name"] == "links.example.com"
    data = assert_ok(client.patch("/api/v1/domains/example.com", {"tracking_subdomain": ""}, format="json"))
    assert data["tracking_subdomain"] is None
    assert "tracking" not in [r["purpose"] for r in data["dns_records"]]


def test_a_bad_change_is_refused_and_nothing_is_written(api, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    client = api(tenants.a1.live_key)
    error = assert_error(client.patch("/api/v1/domains/example.com", {"tracking_subdomain": "bounces",
                                                                      "track_opens": True}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"tracking_subdomain": ["The tracking and return-path subdomains must differ."]}
    error = assert_error(client.patch("/api/v1/domains/example.com", {"track_opens": "maybe"}, format="json"),
                         422, "validation_error")
    assert list(error["details"]) == ["track_opens"]
    domain = Domain.objects.get()
    assert (domain.track_opens, domain.tracking_subdomain) == (None, "")


def test_it_deletes_a_domain_and_its_keys(api, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    response = api(tenants.a1.live_key).delete("/api/v1/domains/example.com")
    assert response.status_code == 204
    assert not Domain.objects.exists() and not DkimKey.objects.exists()
    assert_error(api(tenants.a1.live_key).get("/api/v1/domains/example.com"), 404, "not_found")


def test_the_response_never_contains_private_key_material(api, add_domain, tenants):
    data = add_domain(tenants.a1, "example.com")
    key = DkimKey.objects.get()
    body = api(tenants.a1.live_key).get("/api/v1/domains/example.com").content.decode()
    assert "PRIVATE" not in body and key.private_key_encrypted not in body
    assert data["id"] in body
