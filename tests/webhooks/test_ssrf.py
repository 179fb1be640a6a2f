"""SSRF: private targets refused at creation and at delivery, in every spelling."""

import pytest

from tests.conftest import assert_error, assert_ok
from tests.webhooks.helpers import deliver_due, make_endpoint
from webhooks import services, targets
from webhooks.models import WebhookEndpoint, WebhookEvent

REFUSED_HOSTS = [
    "127.0.0.1", "127.1.2.3", "localhost", "10.0.0.8", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1",
    "2130706433",          # 127.0.0.1 in decimal
    "0177.0.0.1",          # octal
    "0x7f.0.0.1",          # hexadecimal
    "017700000001",        # one octal number
    "[::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:a9fe:a9fe]", "[fd00::1]", "[fe80::1]",
    "[64:ff9b::a00:1]",    # NAT64 of 10.0.0.1
    "[2002:7f00:1::]",     # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert targets.address_refusal(address) is None


@pytest.mark.parametrize("address,label", [
    ("127.0.0.1", "loopback"), ("10.1.1.1", "private"), ("169.254.169.254", "link-local"),
    ("::ffff:192.168.0.1", "private"), ("fc00::1", "private"), ("0.0.0.0", "unspecified"),
    ("ff02::1", "multicast"), ("100.64.0.1", "not a public"),
])
def test_private_addresses_are_refused_with_the_reason(address, label):
    assert label in targets.address_refusal(address)


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_every_spelling_of_a_private_host_is_refused_at_creation(tenants, api, host, settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = api(tenants.a1.live_key).post("/api/v1/webhooks", {"url": f"http://{host}:8080/hook"},
                                             format="json")
    error = assert_error(response, 422, "validation_error")
    assert "refused address" in error["details"]["url"][0]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("url,message", [
    ("ftp://hooks.example.com/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("http:///nohost", "no host"),
    ("hooks.example.com/x", "http:// or https://"),
    ("http://no-such-host.invalid/x", "does not resolve"),
    ("http://127.0.0.1:99999/x", "not valid"),
])
def test_bad_urls_are_refused_at_creation(tenants, api, url, message):
    response = api(tenants.a1.live_key).post("/api/v1/webhooks", {"url": url}, format="json")
    error = assert_error(response, 422, "validation_error")
    assert message in error["details"]["url"][0], error


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0177.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_delivery_rechecks_and_never_connects_to_a_private_address(tenants, settings, listener, host):
    # Saved while private targets were allowed (or the DNS answer changed since): the check at
    # delivery time still refuses it, before any connection is opened.
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = make_endpoint(tenants.a1.subaccount, f"http://{host}:{listener.port}/hook")
    services.webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    deliver_due(endpoint)

    event = WebhookEvent.objects.get(endpoint=endpoint)
    assert event.status == "pending" and event.last_status_code is None
    assert event.last_error.startswith("Refused: ") and "loopback" in event.last_error
    [attempt] = event.attempts.all()
    assert attempt.remote_ip is None
    assert listener.accepted == 0


def test_the_same_listener_is_reached_when_private_targets_are_allowed(tenants, settings, listener):
    # Proves the test above would have seen a connection.
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = make_endpoint(tenants.a1.subaccount, f"http://2130706433:{listener.port}/hook")
    services.webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    deliver_due(endpoint)
    assert listener.accepted >= 1


def test_the_test_send_is_checked_too(tenants, settings, listener, api):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = make_endpoint(tenants.a1.subaccount, f"http://127.0.0.1:{listener.port}/hook")
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    data = assert_ok(api(tenants.a1.live_key).post(f"/api/v1/webhooks/{endpoint.public_id}/test"))
    assert data["status"] == "failed"
    assert data["attempts"][0]["error"].startswith("Refused: ")
    assert listener.accepted == 0
