"""The operator's admin for domains: records and state, verify and rotate actions, no key material."""

import pytest
from django.contrib.auth import get_user_model

from domains.models import DkimKey, Domain


@pytest.fixture
def admin_client(db, client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "a-long-password-1")
    client.force_login(user)
    return client


def test_the_list_shows_and_searches_domains(admin_client, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    add_domain(tenants.b1, "other.example")
    page = admin_client.get("/admin/domains/domain/?q=example.com").content.decode()
    assert "example.com" in page and "other.example" not in page
    page = admin_client.get("/admin/domains/domain/?status__exact=pending").content.decode()
    assert "other.example" in page


def test_the_change_page_shows_records_but_never_key_material(admin_client, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    domain, key = Domain.objects.get(), DkimKey.objects.get()
    response = admin_client.get(f"/admin/domains/domain/{domain.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{key.selector}._domainkey.example.com" in page and "_mailroom.example.com" in page
    assert "PRIVATE KEY" not in page and key.private_key_encrypted not in page
    assert "private_key" not in page
    assert admin_client.get("/admin/domains/domain/add/").status_code == 403


def test_the_verify_action_checks_dns(admin_client, add_domain, tenants, dns_server):
    dns_server.publish(add_domain(tenants.a1, "example.com")["dns_records"])
    domain = Domain.objects.get()
    response = admin_client.post("/admin/domains/domain/", {"action": "verify_now", "_selected_action": [domain.pk]},
                                 follow=True)
    assert "Checked 1 domain(s): 1 verified." in response.content.decode()
    domain.refresh_from_db()
    assert domain.status == "verified"


def test_the_rotate_action_starts_a_rotation(admin_client, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    domain = Domain.objects.get()
    admin_client.post("/admin/domains/domain/", {"action": "rotate_dkim", "_selected_action": [domain.pk]})
    assert sorted(DkimKey.objects.values_list("status", flat=True)) == ["active", "pending"]


def test_keys_have_a_read_only_admin_without_the_private_half(admin_client, add_domain, tenants):
    add_domain(tenants.a1, "example.com")
    key = DkimKey.objects.get()
    assert key.selector in admin_client.get("/admin/domains/dkimkey/").content.decode()
    page = admin_client.get(f"/admin/domains/dkimkey/{key.pk}/change/").content.decode()
    assert key.public_key in page
    assert key.private_key_encrypted not in page and "PRIVATE KEY" not in page
