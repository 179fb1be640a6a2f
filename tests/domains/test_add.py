"""Adding a domain: normalisation, refusals, the key, and the records to publish."""

import pytest
from cryptography.hazmat.primitives import serialization

from accounts.models import Scope
from domains import crypto
from domains.models import DkimKey, Domain
from tests.conftest import assert_error, assert_ok
from tests.domains.conftest import records_by_purpose
from tests.factories import make_key


def test_it_adds_a_domain_and_returns_every_record_to_publish(api, tenants, dns_server):
    data = assert_ok(api(tenants.a1.live_key).post("/api/v1/domains", {"domain": "Example.COM"}, format="json"), 201)
    domain = Domain.objects.get(subaccount=tenants.a1.subaccount)
    key = domain.dkim_keys.get()
    assert data["id"] == domain.public_id and data["id"].startswith("dom_")
    assert data["domain"] == "example.com"
    assert data["status"] == "pending"
    assert (data["spf_verified"], data["dkim_verified"], data["dmarc_verified"]) == (False, False, False)
    assert data["can_send"] is False
    assert data["return_path_subdomain"] == "bounces"
    assert data["tracking_subdomain"] is None
    assert (data["track_opens"], data["track_clicks"]) == (None, None)
    assert [(r["purpose"], r["type"], r["name"], r["value"], r["status"], r["required"])
            for r in data["dns_records"]] == [
        ("verification", "TXT", "_mailroom.example.com",
         f"mailroom-verification={domain.verification_token}", "pending", True),
        ("spf", "TXT", "example.com", "v=spf1 include:spf.mailroom.local ~all", "pending", True),
        ("dkim", "TXT", f"{key.selector}._domainkey.example.com",
         f"v=DKIM1; k=rsa; p={key.public_key}", "pending", True),
        ("dmarc", "TXT", "_dmarc.example.com", "v=DMARC1; p=none;", "pending", False),
        ("return_path", "CNAME", "bounces.example.com", "bounces.mailroom.local", "pending", True),
    ]


def test_the_dkim_record_is_too_long_for_one_string_and_is_shown_split(add_domain, tenants):
    dkim = records_by_purpose(add_domain(tenants.a1, "example.com"))["dkim"]
    assert len(dkim["value"]) > 255
    strings = dkim["zone_value"].split('" "')
    assert len(strings) == 2
    assert "".join(s.strip('"') for s in strings) == dkim["value"]


def test_it_makes_an_rsa_2048_key_and_stores_it_encrypted(add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    key = DkimKey.objects.get()
    assert key.status == "active" and key.key_bits == 2048
    assert b"PRIVATE KEY" not in key.private_key_encrypted.encode()
    pem = crypto.decrypt(key.private_key_encrypted)
    private = serialization.load_pem_private_key(pem, password=None)
    assert private.key_size == 2048
    public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    assert base64.b64encode(public_der).decode() == key.public_key


def test_it_stores_international_names_in_idna_form(add_domain, tenants, api):
    data = add_domain(tenants.a1, "Bücher.example")
    assert data["domain"] == "xn--bcher-kva.example"
    assert data["unicode_domain"] == "bücher.example"
    assert records_by_purpose(data)["spf"]["name"] == "xn--bcher-kva.example"
    # Either form finds it.
    for form in ("bücher.example", "xn--bcher-kva.example", data["id"]):
        assert assert_ok(api(tenants.a1.live_key).get(f"/api/v1/domains/{form}"))["id"] == data["id"]


@pytest.mark.parametrize(("name", "message"), [
    ("com", "com is a public suffix; add a domain registered under it, such as example.com."),
    ("co.uk", "co.uk is a public suffix; add a domain registered under it, such as example.co.uk."),
    ("github.io", "github.io is a public suffix; add a domain registered under it, such as example.github.io."),
    ("https://example.com/", "Give a bare domain name such as example.com (no scheme, path, port or address)."),
    ("me@example.com", "Give a bare domain name such as example.com (no scheme, path, port or address)."),
    ("192.0.2.1", "An IP address is not a domain name."),
    ("exa_mple.com", "Not a valid domain name: Codepoint U+005F at position 4 of 'exa_mple' not allowed."),
    ("", "This field may not be blank."),
])
def test_it_refuses_names_that_cannot_be_sending_domains(api, tenants, dns_server, name, message):
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/domains", {"domain": name}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"domain": [message]}
    assert not Domain.objects.exists() and not DkimKey.objects.exists()


def test_it_refuses_a_bad_return_path_subdomain_and_writes_nothing(api, tenants, dns_server):
    error = assert_error(api(tenants.a1.live_key).post(
        "/api/v1/domains", {"domain": "example.com", "return_path_subdomain": "a.b"}, format="json"),
        422, "validation_error")
    assert error["details"] == {"return_path_subdomain": [
        "return_path_subdomain is a single label such as 'bounces', without dots."]}
    assert not Domain.objects.exists()


def test_it_takes_custom_return_path_and_tracking_subdomains(add_domain, tenants):
    data = add_domain(tenants.a1, "example.com", return_path_subdomain="MR-Bounce", tracking_subdomain="links",
                      track_opens=True, track_clicks=False)
    found = records_by_purpose(data)
    assert (found["return_path"]["name"], found["return_path"]["value"]) == (
        "mr-bounce.example.com", "bounces.mailroom.local")
    assert (found["tracking"]["type"], found["tracking"]["name"], found["tracking"]["value"],
            found["tracking"]["required"]) == ("CNAME", "links.example.com", "track.mailroom.local", False)
    assert (data["track_opens"], data["track_clicks"]) == (True, False)


def test_the_platform_names_come_from_settings(add_domain, tenants, settings):
    settings.MAILROOM_SPF_INCLUDE = "_spf.mail.example.net"
    settings.MAILROOM_RETURN_PATH_HOST = "rp.mail.example.net"
    settings.MAILROOM_TRACKING_HOST = "t.mail.example.net"
    found = records_by_purpose(add_domain(tenants.a1, "example.com", tracking_subdomain="t"))
    assert found["spf"]["value"] == "v=spf1 include:_spf.mail.example.net ~all"
    assert found["return_path"]["value"] == "rp.mail.example.net"
    assert found["tracking"]["value"] == "t.mail.example.net"


def test_an_existing_spf_record_is_merged_rather_than_doubled(add_domain, tenants, dns_server):
    dns_server.set_txt("example.com", "v=spf1 include:_spf.google.com ~all", "other=1")
    spf = records_by_purpose(add_domain(tenants.a1, "example.com"))["spf"]
    assert spf["value"] == "v=spf1 include:_spf.google.com include:spf.mailroom.local ~all"
    assert spf["found"] == ["v=spf1 include:_spf.google.com ~all"]
    assert spf["note"] == (
        "example.com already has an SPF record: replace it with the value shown (your record with "
        "include:spf.mailroom.local added) rather than publishing a second one; a domain may have only one.")


def test_adding_works_when_dns_does_not_answer(short_dns_timeout, add_domain, tenants, dns_server):
    dns_server.hang()
    spf = records_by_purpose(add_domain(tenants.a1, "example.com"))["spf"]
    assert spf["value"] == "v=spf1 include:spf.mailroom.local ~all"


def test_the_same_domain_twice_in_one_subaccount_is_a_conflict(api, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/domains", {"domain": "EXAMPLE.com."},
                                                       format="json"), 409, "conflict")
    assert error["details"] == {"domain": ["Already added."]}
    assert Domain.objects.count() == 1


def test_other_subaccounts_may_add_the_same_domain_but_only_one_can_verify_it(add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    add_domain(tenants.b1, "example.com")
    assert Domain.objects.filter(name="example.com").count() == 2


def test_it_needs_the_domains_scope(api, tenants, dns_server):
    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=[Scope.EMAILS_SEND])
    client = api(key)
    assert_error(client.post("/api/v1/domains", {"domain": "example.com"}, format="json"), 403,
                 "authorization_error")
    assert_error(client.get("/api/v1/domains"), 403, "authorization_error")
    assert not Domain.objects.exists()
