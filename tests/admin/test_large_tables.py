"""List pages stay cheap: a bounded number of queries whatever the rows, no full count of big tables."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditLog
from config import admin_pagination
from emails import services
from emails.models import Email, EmailStatus
from tests.admin.conftest import send
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

LISTS = ["emails/email", "emails/emailevent", "emails/deliveryattempt", "emails/emailrecipient",
         "emails/emailattachment", "emails/trackedlink", "emails/suppression", "emails/idempotencyrecord",
         "emails/monthlyusage", "webhooks/webhookevent", "webhooks/webhookattempt", "webhooks/webhookendpoint",
         "accounts/account", "accounts/subaccount", "accounts/apikey", "accounts/auditlog", "domains/domain"]


def seed(tenants, superuser, count: int) -> None:
    now = timezone.now()
    emails = [send(tenants.a1 if n % 2 else tenants.b1, environment="test", to=f"u{n}@example.com",
                   attachments=[{"filename": "a.txt", "content": "aGk=", "content_type": "text/plain"}],
                   html=f'<a href="https://example.com/{n}">x</a>', track_clicks=True) for n in range(count)]
    services.email_dispatch(ids=[e.pk for e in emails], limit=count)
    endpoint = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url=f"https://e{count}.example.com",
                                              secret="whsec_" + "A" * 43)
    for n in range(count):
        services.suppression_add(subaccount_id=tenants.a1.subaccount.pk, address=f"s{n}@example.com",
                                 reason="manual")
        event = WebhookEvent.objects.create(endpoint=endpoint, event_type="email.sent", body="{}")
        WebhookAttempt.objects.create(event=event, attempted_at=now, webhook_timestamp=1, status_code=500)
        AuditLog.objects.create(actor=superuser, actor_username="ops", action="x.y.z", object_type="emails.email",
                                object_id=str(emails[n].pk), object_repr=emails[n].public_id)


def queries_per_list(client) -> dict[str, int]:
    counts = {}
    for path in LISTS:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/admin/{path}/")
        assert response.status_code == 200, path
        counts[path] = len(captured)
    return counts


def test_list_pages_make_the_same_few_queries_for_5_rows_as_for_50(operator, tenants, superuser,
                                                                   django_assert_max_num_queries):
    seed(tenants, superuser, 5)
    few = queries_per_list(operator)
    seed(tenants, superuser, 45)
    assert Email.objects.count() == 50 and Email.objects.exclude(status=EmailStatus.QUEUED).count() == 50
    many = queries_per_list(operator)

    assert many == few  # nothing per row
    for path in LISTS:
        with django_assert_max_num_queries(12):
            operator.get(f"/admin/{path}/")


def test_the_email_page_makes_a_bounded_number_of_queries(operator, tenants, superuser,
                                                         django_assert_max_num_queries):
    seed(tenants, superuser, 3)
    email = Email.objects.first()
    with django_assert_max_num_queries(25):
        assert operator.get(f"/admin/emails/email/{email.pk}/change/").status_code == 200


def test_a_big_unfiltered_list_uses_the_planner_estimate_and_never_counts(operator, tenants, superuser,
                                                                          monkeypatch, requires_postgres):
    seed(tenants, superuser, 6)
    monkeypatch.setattr(admin_pagination, "ESTIMATE_ABOVE", 5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE emails_email")

    with CaptureQueriesContext(connection) as captured:
        page = operator.get("/admin/emails/email/").content.decode()
    assert not [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "emails_email" in q["sql"]]
    assert "about 6 emails" in page


def test_a_big_filtered_list_counts_at_most_a_cap(operator, tenants, superuser, monkeypatch, requires_postgres):
    seed(tenants, superuser, 6)
    monkeypatch.setattr(admin_pagination, "ESTIMATE_ABOVE", 5)
    monkeypatch.setattr(admin_pagination, "COUNT_CAP", 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE emails_email")

    with CaptureQueriesContext(connection) as captured:
        page = operator.get("/admin/emails/email/", {"environment__exact": "test"}).content.decode()
    counts = [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "emails_email" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]
    assert "more than 3 emails" in page

    narrow = operator.get("/admin/emails/email/", {"q": tenants.a1.subaccount.public_id}).content.decode()
    assert "\n3 emails" in narrow  # under the cap: the exact number


def test_small_tables_and_sqlite_count_exactly(operator, tenants, superuser):
    seed(tenants, superuser, 2)
    assert "2 emails" in operator.get("/admin/emails/email/").content.decode()
