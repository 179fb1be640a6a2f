"""Failed admin logins are limited per client address and per username (429, even for the right password)."""

import pytest
from django.test import Client

from tests.admin.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _three_an_hour(settings, requires_redis):
    # django-ratelimit counts in fixed windows that end at a per-key moment: with "3/m", a test
    # whose four sign-ins straddled that moment (a few seconds of password hashing) started a
    # fresh count and saw 302 instead of 429. An hour's window makes that a 1-in-1000 event.
    settings.MAILROOM_ADMIN_LOGIN_RATE = "3/h"


def login(client: Client, username: str, password: str, ip: str = "203.0.113.7"):
    client.get("/admin/login/", REMOTE_ADDR=ip)  # the CSRF cookie, as a browser would have it
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=ip)


def test_three_failures_then_429_even_with_the_right_password(superuser):
    client = Client()
    for _ in range(3):
        response = login(client, "ops", "wrong")
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content

    blocked = login(client, "ops", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) >= 1
    assert b"Too many failed sign-in attempts" in blocked.content
    assert "_auth_user_id" not in client.session


def test_the_username_is_limited_across_addresses(superuser):
    for n in range(3):
        login(Client(), "OPS ", "wrong", ip=f"198.51.100.{n}")  # case and spaces do not make a new name

    assert login(Client(), "ops", PASSWORD, ip="198.51.100.99").status_code == 429
    # Another user from a fresh address is not affected.
    assert login(Client(), "someone-else", "wrong", ip="198.51.100.100").status_code == 200


def test_the_address_is_limited_across_usernames(superuser):
    for n in range(3):
        login(Client(), f"guess{n}", "wrong", ip="192.0.2.1")

    assert login(Client(), "ops", PASSWORD, ip="192.0.2.1").status_code == 429
    assert login(Client(), "ops", PASSWORD, ip="192.0.2.2").status_code == 302


def test_successful_logins_do_not_count(superuser):
    for _ in range(5):
        response = login(Client(), "ops", PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/admin/"
