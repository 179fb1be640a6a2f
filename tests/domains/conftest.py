import sys
import types

import pytest

from domains import selectors


@pytest.fixture
def short_dns_timeout(dns_server, settings):
    """For tests where the server hangs on purpose: time out fast."""
    settings.DNS_TIMEOUT_SECONDS = 0.5
    return dns_server


@pytest.fixture(autouse=True)
def _fresh_signing_keys():
    selectors.dkim_signing_key_forget()
    yield
    selectors.dkim_signing_key_forget()


@pytest.fixture(autouse=True)
def published_events(monkeypatch):
    """Captures ``webhooks.services.webhook_events_publish`` calls (the webhooks app is tested
    on its own); a stand-in module is used while that app has no such function yet."""
    calls: list[dict] = []

    def record(*, subaccount_id, event_type, data):
        calls.append({"subaccount_id": subaccount_id, "event_type": event_type, "data": data})

    try:
        import webhooks.services as module
    except ImportError:
        module = types.ModuleType("webhooks.services")
        monkeypatch.setitem(sys.modules, "webhooks.services", module)
    monkeypatch.setattr(module, "webhook_events_publish", record, raising=False)
    return calls


@pytest.fixture
def add_domain(api, dns_server):
    """``add_domain(tenant, "example.com", **fields)`` -> the API's domain data (201 asserted)."""
    from tests.conftest import assert_ok

    def add(tenant, name: str, **fields) -> dict:
        return assert_ok(api(tenant.live_key).post("/api/v1/domains", {"domain": name, **fields},
                                                   format="json"), 201)

    return add


def records_by_purpose(domain_data: dict) -> dict[str, dict]:
    """The domain's records keyed by purpose (the active DKIM record for "dkim")."""
    found: dict[str, dict] = {}
    for record in domain_data["dns_records"]:
        if record["purpose"] == "dkim" and not record["required"]:
            found["dkim_pending"] = record
        else:
            found[record["purpose"]] = record
    return found
