"""The operations dashboard (the admin index) shows figures that match the data."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from domains.models import Domain, DomainStatus
from emails import services
from emails.models import Email, EmailStatus
from emails.services.quota import quota_consume
from tests.admin.conftest import send
from webhooks.models import DeliveryStatus, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


def figure(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"><b>([^<]*)</b>', page)
    assert match, element_id
    return match.group(1).strip()


@pytest.fixture
def platform(tenants):
    now = timezone.now()
    # Live mail today: three accepted; one sent through the real dispatch (outbox backend).
    sent = send(tenants.a1, to="one@example.com")
    services.email_dispatch(ids=[sent.pk], limit=1)
    oldest = send(tenants.a1, to="two@example.com")
    retrying = send(tenants.b1, to="three@example.com")
    Email.objects.filter(pk=oldest.pk).update(created_at=now - timedelta(hours=2, minutes=5))
    Email.objects.filter(pk=retrying.pk).update(attempts=1, next_attempt_at=now + timedelta(minutes=5))
    send(tenants.a2, to="later@example.com", scheduled_at=(now + timedelta(days=1)).isoformat())
    stuck = send(tenants.a2, environment="test", to="x@example.com")
    Email.objects.filter(pk=stuck.pk).update(status=EmailStatus.SENDING, locked_until=now - timedelta(minutes=1))
    services.email_events_fan_out_pending()

    failing = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url="https://down.example.com/hook",
                                             secret="whsec_" + "A" * 43, failing_since=now - timedelta(hours=5))
    healthy = WebhookEndpoint.objects.create(subaccount=tenants.b1.subaccount, url="https://up.example.com/hook",
                                             secret="whsec_" + "A" * 43)
    for endpoint, due, attempts in ((failing, now - timedelta(minutes=1), 3), (failing, now + timedelta(hours=1), 2),
                                    (healthy, now - timedelta(seconds=5), 0)):
        WebhookEvent.objects.create(endpoint=endpoint, event_type="email.sent", body="{}", next_attempt_at=due,
                                    attempt_count=attempts)
    WebhookEvent.objects.create(endpoint=healthy, event_type="email.sent", body="{}", status=DeliveryStatus.SUCCEEDED)
    WebhookEvent.objects.filter(endpoint=failing).update(created_at=now - timedelta(minutes=90))

    for name, status in (("bad.test", DomainStatus.FAILED), ("flaky.test", DomainStatus.TEMPORARY_FAILURE),
                         ("good.test", DomainStatus.VERIFIED)):
        Domain.objects.create(subaccount=tenants.a1.subaccount, name=name, verification_token="t", status=status,
                              last_error="" if status == DomainStatus.VERIFIED else f"{name}: no DKIM record")

    quota_consume(account=tenants.a1.account, count=850 - 4)  # the Free plan: 1,000 a month; 4 sent above
    quota_consume(account=tenants.b1.account, count=100)
    return tenants


def test_the_queue_figures_match_the_rows(operator, platform):
    page = operator.get("/admin/").content.decode()

    assert figure(page, "queue-queued") == "2"  # the oldest and the retrying one
    assert "queued (1 due now)" in page
    assert figure(page, "queue-retrying") == "1"
    assert figure(page, "queue-scheduled") == "1"
    assert figure(page, "queue-sending") == "1" and "(1 past their lease)" in page
    oldest = Email.objects.filter(status=EmailStatus.QUEUED).order_by("created_at").first()
    assert figure(page, "queue-oldest") == "2 h 5 min"
    assert f'<a href="/admin/emails/email/{oldest.pk}/change/">{oldest.public_id}</a>' in page


def test_the_webhook_domain_and_quota_figures_match(operator, platform):
    page = operator.get("/admin/").content.decode()

    assert figure(page, "webhook-backlog") == "3"
    assert "(2 due, oldest 1 h 30 min)" in page
    endpoints = page[page.index('id="failing-endpoints"'):].split("</table>")[0]
    assert "down.example.com" in endpoints and "up.example.com" not in endpoints
    assert "Failing webhook endpoints (1)" in page

    domains = page[page.index('id="failing-domains"'):].split("</table>")[0]
    assert "bad.test" in domains and "flaky.test" in domains and "good.test" not in domains
    assert "Domains failing verification (2)" in page

    near = page[page.index('id="near-quota"'):].split("</table>")[0]
    assert re.findall(r"<td>(\d+)</td><td>(\d+)</td><td>(\d+) %</td>", near) == [
        (str(services.quota_used(account=platform.a1.account)), "1000", "85")]
    assert "Account A" in near and "Account B" not in near


def test_the_volume_matches_the_rollups(operator, platform):
    from django.db.models import Sum

    from analytics.models import DailyCounter

    page = operator.get("/admin/").content.decode()
    live = DailyCounter.objects.filter(environment="live", dimension="all").aggregate(
        accepted=Sum("accepted"), sent=Sum("sent"))
    assert live == {"accepted": 4, "sent": 1}  # four live emails accepted today, one sent
    totals = re.sub(r"\s+", " ", page[page.index('id="volume-totals"'):].split("</p>")[0])
    assert "Accepted <b>4</b> &middot; sent <b>1</b> &middot; delivered <b>0</b>" in totals
    assert 'class="volume-chart"' in page


def test_an_empty_platform_shows_zeros(operator, db):
    page = operator.get("/admin/").content.decode()
    assert figure(page, "queue-queued") == "0"
    assert figure(page, "queue-oldest") == "-"
    assert figure(page, "webhook-backlog") == "0"
