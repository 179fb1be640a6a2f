"""End to end in headless Chromium: sign in through the form, read the dashboard, find an email by
recipient, open it, cancel it, see the result.

Debian's ``chromium`` package, driven by Playwright's Python package (``executable_path``: no
browser download). ``.ci/run`` installs Chromium when it is missing; locally the test skips
without it (``apt-get install chromium``). Screenshots go to ``var/screenshots/`` (override
with ``MAILROOM_SCREENSHOT_DIR``); docs/admin-*.png are copies of them.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from emails.models import Email, EmailStatus
from tests.admin.conftest import PASSWORD, send
from tests.conftest import require_service

CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NEWSLETTER = """<!doctype html><html><body style="margin:0;background:#f4f5f7;font-family:Arial,sans-serif">
<table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px">
<table width="520" cellpadding="0" cellspacing="0" style="background:#fff;border-radius:6px">
<tr><td style="background:#3b5bdb;color:#fff;padding:20px 24px;font-size:20px;font-weight:bold">Acme</td></tr>
<tr><td style="padding:24px;color:#222;font-size:15px;line-height:1.5">
<h1 style="font-size:20px;margin:0 0 12px">Your order #1042 has shipped</h1>
<p>Hi Sam, good news: your parcel is on its way and should arrive on Thursday.</p>
<p><a href="https://acme.example/track/1042" style="background:#3b5bdb;color:#fff;padding:10px 16px;
border-radius:4px;text-decoration:none">Track your parcel</a></p>
<p style="color:#777;font-size:12px">Acme Ltd, 1 Example Street</p></td></tr></table></td></tr></table>
</body></html>"""


def history(tenants) -> None:
    """A fortnight of live traffic, a failing webhook endpoint and domain: a dashboard with content."""
    from datetime import timedelta

    from django.utils import timezone

    from domains.models import Domain, DomainStatus
    from emails.services import email_event_record
    from webhooks.models import WebhookEndpoint, WebhookEvent

    now = timezone.now()
    for day in range(14):
        for n in range(3 + (day * 7) % 5):
            email = send(tenants.a1 if n % 3 else tenants.b1, to=f"customer{day}-{n}@example.com")
            when = now - timedelta(days=day, minutes=n)
            email_event_record(email=email, type="sent", timestamp=when)
            outcome = "bounced" if (day + n) % 6 == 0 else "delivered"
            email_event_record(email=email, type=outcome, recipient=email.to[0], timestamp=when, data={
                "bounce_type": "hard"} if outcome == "bounced" else {})
            Email.objects.filter(pk=email.pk).update(status=outcome)
    endpoint = WebhookEndpoint.objects.create(subaccount=tenants.b1.subaccount, url="https://hooks.beta.example/mail",
                                              secret="whsec_" + "A" * 43, failing_since=now - timedelta(hours=7))
    for _ in range(4):
        WebhookEvent.objects.create(endpoint=endpoint, event_type="email.delivered", body="{}", attempt_count=3,
                                    next_attempt_at=now + timedelta(minutes=20))
    Domain.objects.create(subaccount=tenants.b1.subaccount, name="beta.example", verification_token="t",
                          status=DomainStatus.FAILED, failed_at=now - timedelta(hours=2),
                          last_error="DKIM: no TXT record at mr1._domainkey.beta.example")


@pytest.fixture
def browser_page(monkeypatch):
    if not Path(CHROMIUM).exists():
        require_service(f"Chromium ({CHROMIUM}; apt-get install chromium)", False)
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            # ORM calls made while Playwright's loop runs get their own connection (Django keys
            # connections by context there): close it, or the test database cannot be dropped.
            connections.close_all()
            browser.close()


def screenshot(page, name: str) -> Path:
    directory = Path(os.environ.get("MAILROOM_SCREENSHOT_DIR", settings.VAR_DIR / "screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    # A viewport as tall as the page rather than full_page=True: Chromium leaves a sandboxed
    # (opaque-origin) iframe blank in a full-page capture when it starts below the first screen.
    page.set_viewport_size({"width": 1280, "height": page.evaluate("document.documentElement.scrollHeight")})
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    return path


def test_an_operator_signs_in_finds_an_email_and_cancels_it(live_server, browser_page, tenants, transactional_db):
    from emails import services

    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    delivered = send(tenants.a1, environment="test", to="delivered@simulator.mailroom.test",
                     subject="Your order #1042 has shipped", html=NEWSLETTER, text="Your parcel is on its way.")
    services.email_dispatch(ids=[delivered.pk], limit=1)
    waiting = send(tenants.b1, to="find-me@example.com", subject="Password reset", text="Reset it")
    history(tenants)
    page = browser_page

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.wait_for_selector("#operations-dashboard")
    assert page.inner_text("#queue-queued b") == "1"
    assert page.inner_text("#queue-oldest a") == waiting.public_id
    assert page.locator("svg.volume-chart").count() == 1
    shot = screenshot(page, "admin-dashboard.png")

    page.goto(f"{live_server.url}/admin/emails/email/")
    page.fill("#searchbar", "find-me@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/emails/email/?q=find-me*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    page.click(f"#result_list a:text('{waiting.public_id}')")
    page.wait_for_selector("#email-timeline")
    assert "queued" in page.inner_text("#email-timeline")
    assert "find-me@example.com" in page.inner_text("#email-recipients")

    page.goto(f"{live_server.url}/admin/emails/email/?q=find-me@example.com")
    page.check("#result_list input.action-select")
    page.select_option("select[name=action]", "cancel")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "1 email(s) cancelled." in page.inner_text(".messagelist")
    assert "Cancelled" in page.inner_text("#result_list tbody tr")
    assert Email.objects.get(pk=waiting.pk).status == EmailStatus.CANCELLED

    # The delivered email's page: the HTML in its sandboxed frame, the timeline, the headers.
    page.goto(f"{live_server.url}/admin/emails/email/{delivered.pk}/change/")
    frame = page.frame_locator("#email-html-preview")
    assert "has shipped" in frame.locator("h1").inner_text()
    assert page.get_attribute("#email-html-preview", "sandbox") == ""
    assert "delivered" in page.inner_text("#email-timeline")
    assert delivered.message_id in page.inner_text("#email-headers")
    email_shot = screenshot(page, "admin-email.png")

    if os.environ.get("MAILROOM_UPDATE_DOCS_SCREENSHOTS"):
        for path in (shot, email_shot):
            shutil.copy(path, settings.BASE_DIR / "docs" / path.name)
