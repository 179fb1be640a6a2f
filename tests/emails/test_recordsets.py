"""config.recordsets.insert_rows writes what Django's bulk_create writes (PostgreSQL)."""

from datetime import UTC, datetime

import pytest

from config.recordsets import insert_rows
from emails.models import DeliveryAttempt, EmailEvent
from emails.services import email_send

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 11, 22, 6, 30, 15, 123456, tzinfo=UTC)


def _values(model, **filters) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("id", "public_id")}
            for row in model.objects.filter(**filters).order_by("id").values()]


def test_rows_inserted_in_one_statement_equal_bulk_created_ones(requires_postgres, tenants, outbox_tasks):
    email = email_send(subaccount=tenants.a1.subaccount, environment="live",
                       data={"from": "hello@acme.test", "to": "ann@example.com", "subject": "Hi", "text": "x"})
    events = [dict(email_id=email.pk, type="sent", recipient="", data={"response": "250 ok", "n": [1, None]},
                   timestamp=WHEN, provider_event_id=None),
              dict(email_id=email.pk, type="delivered", recipient="ann@example.com",
                   data={"note": "caf\u00e9 \U0001F600 \"q\""}, timestamp=WHEN, provider_event_id="prov-1")]
    attempts = [dict(email_id=email.pk, number=1, attempted_at=WHEN, outcome="sent", response="250 2.0.0 Ok",
                     duration_ms=12)]
    returned = insert_rows(EmailEvent, events, returning=("public_id", "id"))
    insert_rows(DeliveryAttempt, attempts)
    ours = (_values(EmailEvent, pk__in=[pk for _, pk in returned]), _values(DeliveryAttempt, email=email))
    assert [public_id[:4] for public_id, _ in returned] == ["evt_", "evt_"]  # filled as a save would

    EmailEvent.objects.filter(pk__in=[pk for _, pk in returned]).delete()
    DeliveryAttempt.objects.all().delete()
    EmailEvent.objects.bulk_create([EmailEvent(**row) for row in events])
    DeliveryAttempt.objects.bulk_create([DeliveryAttempt(**row) for row in attempts])
    assert ours == (_values(EmailEvent, timestamp=WHEN), _values(DeliveryAttempt, email=email))
    assert insert_rows(DeliveryAttempt, []) == []
