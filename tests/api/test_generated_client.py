"""A Python client generated from the served schema works as generated (no hand edits).

The client is generated in the test run with openapi-python-client (pinned in the dev extra) from
``/api/v1/schema/`` of a live server, into a temporary directory; nothing generated is committed.
``--fail-on-warning`` makes any part of the schema the generator cannot express a failure. Its
post hooks (``ruff`` formatting) are switched off: generation needs nothing but the package.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emails.services import email_events_fan_out_pending

PACKAGE = "mailroom_api_client"


def generate_client(schema_url: str, directory: Path) -> Path:
    schema = directory / "openapi.json"
    schema.write_bytes(requests.get(schema_url, params={"format": "json"}, timeout=30).content)
    config = directory / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(schema), "--meta", "none",
         "--config", str(config), "--output-path", str(directory / PACKAGE), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300, cwd=directory,
    )
    assert result.returncode == 0, f"openapi-python-client failed:\n{result.stdout}\n{result.stderr}"
    return directory


@pytest.fixture
def generated(live_server, tmp_path, monkeypatch):
    generate_client(f"{live_server.url}/api/v1/schema/", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


def _import(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_runs_the_whole_journey(generated, live_server, tenants, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    models = _import("models")
    account_api = {name: _import(f"api.account.{name}") for name in (
        "subaccounts_create", "subaccount_api_keys_create", "account_usage")}
    templates_create = _import("api.templates.templates_create")
    emails = {name: _import(f"api.emails.{name}") for name in ("emails_send", "emails_list", "emails_get")}
    analytics_emails = _import("api.analytics.analytics_emails")

    account = generated.AuthenticatedClient(base_url=live_server.url, token=tenants.a1.account_key, prefix="",
                                            auth_header_name="X-Account-ApiKey", raise_on_unexpected_status=True)

    # A sub-account and a test key for it, with the account key.
    created = account_api["subaccounts_create"].sync(
        client=account, body=models.SubAccountListInputRequest(name="Acme Onboarding", track_opens=True))
    assert isinstance(created, models.SubaccountsCreateResponse201), created
    subaccount = created.data
    assert subaccount.id.startswith("sub_") and subaccount.name == "Acme Onboarding"
    key = account_api["subaccount_api_keys_create"].sync(
        subaccount.id, client=account,
        body=models.SubAccountKeyInputRequest(name="onboarding-ci", environment=models.EnvironmentEnum.TEST))
    assert isinstance(key, models.SubaccountApiKeysCreateResponse201), key
    assert key.data.key.startswith("mr_test_") and key.data.subaccount_id == subaccount.id

    sub = generated.AuthenticatedClient(base_url=live_server.url, token=key.data.key, prefix="",
                                        auth_header_name="X-SubAccount-ApiKey", raise_on_unexpected_status=True)

    # A template, then an email sent with it.
    template = templates_create.sync(client=sub, body=models.TemplateListInputRequest(
        name="welcome", subject="Welcome to {{company}}, {{user_name}}!",
        html="<h1>Welcome to {{company}}, {{user_name}}!</h1>", text="Welcome to {{company}}, {{user_name}}!"))
    assert isinstance(template, models.TemplatesCreateResponse201), template
    assert template.data.variables == ["company", "user_name"] and template.data.version == 1

    variables = models.SendEmailRequestRequestVariables.from_dict({"company": "Acme", "user_name": "Ada"})
    sent = emails["emails_send"].sync_detailed(
        client=sub, idempotency_key="welcome-ada-1",
        body=models.SendEmailRequestRequest(from_="Acme <hello@acme.com>", to="ada@example.com",
                                            template_id="welcome", variables=variables, tags=["welcome"]))
    assert sent.status_code == 201, sent.content
    assert sent.headers["X-RateLimit-Limit"] and sent.headers["X-Request-Id"] == sent.parsed.meta.request_id
    email = sent.parsed.data
    assert email.id.startswith("msg_") and email.environment == models.EnvironmentEnum.TEST
    assert (email.subject, email.template_id, email.template_version) == ("Welcome to Acme, Ada!", template.data.id, 1)
    assert email.from_ == "Acme <hello@acme.com>" and email.to == ["ada@example.com"] and email.replayed is False

    # The same request again is replayed, and the generated model reads the replay too.
    again = emails["emails_send"].sync_detailed(
        client=sub, idempotency_key="welcome-ada-1",
        body=models.SendEmailRequestRequest(from_="Acme <hello@acme.com>", to="ada@example.com",
                                            template_id="welcome", variables=variables, tags=["welcome"]))
    assert again.status_code == 201 and again.headers["X-Idempotent-Replay"] == "true"
    assert again.parsed.data.id == email.id and again.parsed.data.replayed is True

    # List (filtered by tag and environment) and fetch.
    listed = emails["emails_list"].sync(client=sub, tag="welcome", environment=models.EmailsListEnvironment.TEST)
    assert [e.id for e in listed.data.emails] == [email.id]
    assert listed.data.pagination.total == 1 and listed.data.pagination.has_more is False
    detail = emails["emails_get"].sync(email.id, client=sub)
    assert detail.data.id == email.id
    assert detail.data.html.startswith("<h1>Welcome to Acme, Ada!</h1><img src=")  # track_opens: the pixel
    assert detail.data.events[0].type_ in {"queued", "sent", "delivered"}

    # Analytics of the test environment count it (once the fan-out the beat runs has).
    email_events_fan_out_pending()
    stats = analytics_emails.sync(client=sub, environment=models.AnalyticsEmailsEnvironment.TEST)
    assert stats.data.total.accepted == 1 and stats.data.environment == "test"
    assert sum(bucket.accepted for bucket in stats.data.by_date) == 1

    # An error comes back as the typed error envelope.
    missing = emails["emails_get"].sync_detailed("msg_doesnotexist", client=sub)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.ErrorEnvelope) and missing.parsed.error.code == "not_found"

    usage = account_api["account_usage"].sync(client=account)
    assert subaccount.id in [s.id for s in usage.data.subaccounts]
