"""Storing accepted mail: one statement on PostgreSQL, the ORM elsewhere; the deferred fan-out."""

import base64
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.services import rollups_rebuild
from emails.models import (
    Email,
    EmailAttachment,
    EmailEvent,
    EmailRecipient,
    MonthlyUsage,
    PendingFanout,
    Suppression,
    SuppressionReason,
    TrackedLink,
)
from emails.services import (
    accept,
    email_dispatch,
    email_events_fan_out,
    email_events_fan_out_pending,
    email_send,
)
from emails.services import store as store_module
from emails.services.wake import Waker
from tests.webhooks.helpers import make_endpoint
from webhooks.models import WebhookEvent

RICH = {
    "from": "Acme <hello@acme.test>", "to": ["Zoe <zoe@example.com>", "ann@example.com"],
    "cc": ["cc@example.com", "gone@example.com"], "bcc": "bcc@example.com", "reply_to": "help@acme.test",
    "subject": "Your receipt", "text": "Thanks \u00e9\u4e2d\U0001F600 \"quoted\" \\ back",
    "html": '<p>Thanks</p><a href="https://acme.test/a?x=1&y=2">A</a><a href="https://acme.test/b">B</a>',
    "headers": {"X-Order": "42"}, "tags": ["receipt", "eu"], "metadata": {"order": 42, "gift": True, "note": None},
    "track_clicks": True, "unsubscribe": True,
    "attachments": [{"filename": "a.bin", "content": base64.b64encode(bytes(range(256))).decode(),
                     "content_type": "application/octet-stream"}],
}
IGNORED = {"id", "public_id", "email", "email_id", "created_at", "updated_at", "next_attempt_at", "enqueued_at",
           "message_id", "timestamp", "html"}


def _rows(model, **filters) -> list[dict]:
    rows = model.objects.filter(**filters).order_by("id").values()
    return [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items() if k not in IGNORED}
            for row in rows]


def _stored(email: Email) -> dict:
    return {
        "email": _rows(Email, pk=email.pk),
        "recipients": _rows(EmailRecipient, email=email),
        "attachments": _rows(EmailAttachment, email=email),
        "links": _rows(TrackedLink, email=email),
        "events": _rows(EmailEvent, email=email),
    }


@pytest.fixture
def suppressed_gone(tenants):
    Suppression.objects.create(subaccount=tenants.a1.subaccount, address="gone@example.com",
                               reason=SuppressionReason.MANUAL)


def test_the_one_statement_path_and_the_orm_path_write_the_same_rows(tenants, suppressed_gone, outbox_tasks,
                                                                     requires_postgres, monkeypatch):
    fast = email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    monkeypatch.setattr(store_module, "_store_in_one_statement", store_module._store_with_orm)
    portable = email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    assert _stored(fast) == _stored(portable)
    stored = _stored(fast)
    assert [r["address"] for r in stored["recipients"]] == [
        "zoe@example.com", "ann@example.com", "cc@example.com", "gone@example.com", "bcc@example.com"]
    assert [r["suppressed"] for r in stored["recipients"]] == [False, False, False, True, False]
    assert stored["attachments"][0]["content"] == bytes(range(256)) and stored["attachments"][0]["size"] == 256
    assert [link["url"] for link in stored["links"]] == ["https://acme.test/a?x=1&y=2", "https://acme.test/b"]
    assert [(e["type"], e["recipient"]) for e in stored["events"]] == [("queued", ""),
                                                                      ("suppressed", "gone@example.com")]
    assert stored["email"][0]["text"] == RICH["text"] and stored["email"][0]["metadata"] == RICH["metadata"]
    assert PendingFanout.objects.count() == 4  # two first events per email, both paths
    assert sum(MonthlyUsage.objects.values_list("emails", flat=True)) == 2


def test_a_single_send_is_two_statements_on_postgresql(tenants, outbox_tasks, requires_postgres):
    email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)  # warms the domain caches
    with CaptureQueriesContext(connection) as queries:
        email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    # The quota (a1's plan has one); the store's own statement, which also checks the
    # suppression list, goes through psycopg directly, prepared, and is not in Django's query log.
    tables = [q["sql"].split(" FROM ")[1].split()[0] for q in queries.captured_queries]
    assert tables == ['"emails_monthlyusage"']
    assert Email.objects.count() == 2 and EmailRecipient.objects.count() == 10


# --- the suppression list, checked by the store ---------------------------------------------


def _suppress(tenant, address: str) -> None:
    Suppression.objects.create(subaccount=tenant.subaccount, address=address, reason=SuppressionReason.MANUAL)


def _counts() -> tuple:
    return (Email.objects.count(), EmailRecipient.objects.count(), EmailAttachment.objects.count(),
            TrackedLink.objects.count(), EmailEvent.objects.count(), PendingFanout.objects.count(),
            sum(MonthlyUsage.objects.values_list("emails", flat=True)))


def test_the_store_writes_nothing_when_the_suppression_list_is_not_what_it_assumed(tenants, outbox_tasks):
    now = timezone.now()
    context = accept._SendContext(tenants.a1.subaccount, "live")
    request = accept.send_request_parse(RICH, now=now)
    prepared = accept._prepare(context, request, now)  # assumes nothing is suppressed
    _suppress(tenants.a1, "cc@example.com")
    before = _counts()
    with pytest.raises(store_module.SuppressionsChanged) as changed:
        store_module.emails_store([prepared], live=True, now=now)
    assert changed.value.suppressed == {"cc@example.com"}
    assert _counts() == before

    context.suppressed = changed.value.suppressed  # prepared again with the list as it is
    store_module.emails_store([accept._prepare(context, request, now)], live=True, now=now)
    assert _counts() != before
    Suppression.objects.filter(address="cc@example.com").delete()  # and the other way round
    prepared = accept._prepare(context, request, now)
    with pytest.raises(store_module.SuppressionsChanged) as changed:
        store_module.emails_store([prepared], live=True, now=now)
    assert changed.value.suppressed == set()


def test_a_send_racing_a_new_suppression_is_prepared_again(tenants, outbox_tasks, monkeypatch):
    prepare = accept._prepare
    calls = []

    def prepare_then_suppress(context, request, now):
        prepared = prepare(context, request, now)
        if not calls:  # the suppression lands after the first preparation, before its store
            _suppress(tenants.a1, "ann@example.com")
        calls.append(prepared.values["public_id"])
        return prepared

    monkeypatch.setattr(accept, "_prepare", prepare_then_suppress)
    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    assert len(calls) == 2 and email.public_id == calls[1]
    assert Email.objects.get().public_id == calls[1]
    assert list(EmailRecipient.objects.values_list("address", "suppressed").order_by("id")) == [
        ("zoe@example.com", False), ("ann@example.com", True)]
    assert sorted(EmailEvent.objects.values_list("type", "recipient")) == [
        ("queued", ""), ("suppressed", "ann@example.com")]


def test_a_send_whose_every_to_became_suppressed_is_refused_with_nothing_stored(api, tenants, outbox_tasks,
                                                                             monkeypatch):
    prepare = accept._prepare

    def prepare_then_suppress(context, request, now):
        prepared = prepare(context, request, now)
        if not Suppression.objects.exists():
            _suppress(tenants.a1, "ann@example.com")
        return prepared

    monkeypatch.setattr(accept, "_prepare", prepare_then_suppress)
    response = api(tenants.a1.live_key).post("/api/v1/emails", dict(RICH, to="ann@example.com"), format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "recipient_suppressed"
    assert _counts() == (0, 0, 0, 0, 0, 0, 0)


def test_a_suppression_list_that_keeps_changing_gives_409_and_stores_nothing(api, tenants, outbox_tasks,
                                                                              monkeypatch):
    prepare = accept._prepare

    def prepare_then_flip(context, request, now):  # every store finds the list changed again
        prepared = prepare(context, request, now)
        if Suppression.objects.exists():
            Suppression.objects.all().delete()
        else:
            _suppress(tenants.a1, "ann@example.com")
        return prepared

    monkeypatch.setattr(accept, "_prepare", prepare_then_flip)
    response = api(tenants.a1.live_key).post("/api/v1/emails", RICH, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    response = api(tenants.a1.live_key).post("/api/v1/emails/batch", {"emails": [RICH]}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert _counts() == (0, 0, 0, 0, 0, 0, 0)


def test_a_batch_racing_a_new_suppression_is_prepared_again(api, tenants, outbox_tasks, monkeypatch):
    store = store_module.emails_store
    stores = []

    def suppress_then_store(prepared, **kwargs):
        if not stores:  # after the batch's lookup and preparation
            _suppress(tenants.a1, "u1@example.com")
        stores.append(len(prepared))
        return store(prepared, **kwargs)

    monkeypatch.setattr(accept, "emails_store", suppress_then_store)
    items = [dict(RICH, to=f"u{i}@example.com", cc=[], bcc=[]) for i in range(3)]
    results = api(tenants.a1.live_key).post("/api/v1/emails/batch", {"emails": items}, format="json").json()
    codes = [r.get("error", {}).get("code") for r in results["data"]["results"]]
    assert codes == [None, "recipient_suppressed", None] and stores == [3, 2]
    assert Email.objects.count() == 2


def test_a_batch_keeps_its_order_in_ids(api, tenants, outbox_tasks):
    items = [dict(RICH, to=f"u{i}@example.com", cc=[], bcc=[]) for i in range(30)]
    results = api(tenants.a1.live_key).post("/api/v1/emails/batch", {"emails": items}, format="json").json()
    ids = [r["id"] for r in results["data"]["results"]]
    assert list(Email.objects.order_by("id").values_list("public_id", flat=True)) == ids
    assert list(EmailRecipient.objects.order_by("id").values_list("address", flat=True)) == [
        f"u{i}@example.com" for i in range(30)]


def test_test_mail_is_not_counted_against_the_month(tenants, outbox_tasks):
    email_send(subaccount=tenants.a1.subaccount, environment="test", data=RICH)
    assert not MonthlyUsage.objects.filter(emails__gt=0).exists()


# --- the deferred fan-out -------------------------------------------------------------------


def test_first_events_wait_for_the_fan_out_which_applies_them_exactly_once(tenants, outbox_tasks):
    endpoint = make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    assert WebhookEvent.objects.count() == 0 and PendingFanout.objects.count() == 1

    assert email_events_fan_out_pending() == 1
    hook = WebhookEvent.objects.get()
    assert (hook.endpoint_id, hook.event_type) == (endpoint.pk, "email.queued")
    assert email.public_id in hook.body
    assert not PendingFanout.objects.exists()
    assert email_events_fan_out_pending() == 0 and WebhookEvent.objects.count() == 1


def test_a_failed_fan_out_changes_nothing_and_is_retried(tenants, outbox_tasks, monkeypatch):
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    from emails.services import events

    def crash(rows):
        raise RuntimeError("worker died mid fan-out")

    monkeypatch.setattr(events, "rollups_apply", crash)
    with pytest.raises(RuntimeError):
        email_events_fan_out()
    assert WebhookEvent.objects.count() == 0 and PendingFanout.objects.count() == 1
    monkeypatch.undo()
    assert email_events_fan_out() == 1 and WebhookEvent.objects.count() == 1


def test_the_dispatcher_fans_out_first_so_queued_comes_before_sent(tenants, outbox_tasks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    email_dispatch(ids=[email.pk])
    assert list(WebhookEvent.objects.order_by("id").values_list("event_type", flat=True)) == [
        "email.queued", "email.sent"]
    assert not PendingFanout.objects.exists()


def _webhook_bodies() -> list[tuple]:
    import json

    rows = WebhookEvent.objects.order_by("id").values_list("event_type", "body")
    return [(kind, {k: v for k, v in json.loads(body)["data"].items() if k not in ("email_id", "event_id")})
            for kind, body in rows]


def _dispatchers_fan_out(emails: list) -> int:
    """What the dispatcher's record step does with its batch's pending first events (here with
    no events of its own): take them, fan them out in the same transaction."""
    from django.db import transaction

    from emails.services.events import email_events_record, email_events_take_pending

    with transaction.atomic():
        pending = email_events_take_pending(emails)
        email_events_record([], fan_out_first=pending)
    return len(pending[1])


def test_the_dispatchers_fan_out_writes_what_the_generic_one_writes(tenants, outbox_tasks):
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    _suppress(tenants.a1, "gone@example.com")
    first, second = (email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH) for _ in range(2))
    assert email_events_fan_out(email_ids=[first.pk]) == 2  # queued, and suppressed for gone@
    generic = _webhook_bodies()
    assert _dispatchers_fan_out([Email.objects.get(pk=second.pk)]) == 2
    assert _webhook_bodies()[2:] == generic and len(generic) == 2
    assert not PendingFanout.objects.exists()
    assert _dispatchers_fan_out([first, second]) == 0  # exactly once
    report = rollups_rebuild(check_only=True)
    assert report.differences == [] and report.events == 4


@pytest.mark.django_db(transaction=True)
def test_the_dispatchers_fan_out_waits_for_a_fan_out_in_progress_and_skips_its_rows(requires_postgres, tenants,
                                                                                  outbox_tasks):
    import threading

    from django.db import connections, transaction

    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    locked, release, done = threading.Event(), threading.Event(), []

    def beat():  # the beat task, holding its rows until told to commit
        try:
            with transaction.atomic():
                done.append(("beat", email_events_fan_out()))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    def dispatcher():
        try:
            done.append(("dispatcher", _dispatchers_fan_out([email])))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat)]
    threads[0].start()
    assert locked.wait(10)
    threads.append(threading.Thread(target=dispatcher))
    threads[1].start()
    threads[1].join(0.5)
    assert threads[1].is_alive()  # waiting for the beat's row lock, not skipping past it
    release.set()
    for thread in threads:
        thread.join(10)
    assert done == [("beat", 1), ("dispatcher", 0)]
    assert WebhookEvent.objects.count() == 1 and not PendingFanout.objects.exists()


def test_a_batch_that_only_failed_transiently_still_fans_out_its_first_events(tenants, outbox_tasks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], bcc=[]))
    email_dispatch(ids=[email.pk])
    assert Email.objects.get(pk=email.pk).status == "queued"  # to be retried: no event of its own
    assert list(WebhookEvent.objects.values_list("event_type", flat=True)) == ["email.queued"]
    assert not PendingFanout.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_taking_pending_events_needs_the_transaction_that_fans_them_out(tenants, outbox_tasks):
    from emails.services.events import email_events_take_pending

    email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    with pytest.raises(RuntimeError):
        email_events_take_pending([email])
    assert PendingFanout.objects.exists()


def test_the_counters_match_the_events_before_and_after_the_fan_out(tenants, outbox_tasks):
    for _ in range(3):
        email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    assert rollups_rebuild(check_only=True).differences == []  # pending events are not counted yet
    email_events_fan_out_pending()
    report = rollups_rebuild(check_only=True)
    assert report.differences == [] and report.events == 3


def test_scheduled_mail_is_fanned_out_by_the_beat_before_its_release(tenants, outbox_tasks):
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/in")
    email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, cc=[], scheduled_at=later))
    assert email_events_fan_out_pending() == 1
    assert WebhookEvent.objects.get().event_type == "email.scheduled"


# --- waking the dispatcher -----------------------------------------------------------------


def test_the_first_wake_publishes_at_once_and_a_burst_after_it_once_more_at_the_end():
    published = []
    waker = Waker(published.append, interval=0.2)
    waker.wake([1])
    assert published == [[1]]
    waker.wake([2])
    waker.wake([3])
    assert published == [[1]]  # armed, not yet fired
    time.sleep(0.35)
    assert published == [[1], [2, 3]]  # one trailing publish, after every commit that asked
    time.sleep(0.25)
    waker.wake([4])
    assert published == [[1], [2, 3], [4]]


def test_a_flushed_waker_publishes_what_it_holds():
    published = []
    waker = Waker(published.append, interval=60)
    waker.wake([1])
    waker.wake([2])
    waker.flush()
    assert published == [[1], [2]]


def test_a_failed_publish_leaves_the_rows_to_the_sweeper(tenants, monkeypatch):
    from emails import tasks

    email = email_send(subaccount=tenants.a1.subaccount, environment="test", data=RICH)

    def broker_down():
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.dispatch_due, "delay", broker_down)
    accept._publish_dispatch_due([email.pk])
    email.refresh_from_db()
    assert email.enqueued_at is None  # the sweeper's next run publishes it


def test_single_sends_and_batches_wake_the_dispatcher(api, tenants, monkeypatch, django_capture_on_commit_callbacks):
    woken, by_id = [], []
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: woken.append(list(ids)))
    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: by_id.append(list(ids)))
    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(subaccount=tenants.a1.subaccount, environment="live", data=RICH)
    assert woken == [[email.pk]]
    items = [dict(RICH, to=f"u{i}@example.com", cc=[], bcc=[]) for i in range(60)]
    with django_capture_on_commit_callbacks(execute=True):
        api(tenants.a1.live_key).post("/api/v1/emails/batch", {"emails": items}, format="json")
    assert len(woken) == 2 and len(woken[1]) == 60 and by_id == []


def test_a_full_claim_queues_the_next_round_before_sending(tenants, outbox_tasks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    for i in range(5):
        email_send(subaccount=tenants.a1.subaccount, environment="live", data=dict(RICH, to=f"u{i}@example.com"))
    rounds = []
    assert email_dispatch(limit=3, on_backlog=lambda: rounds.append(len(mail.outbox))) == 3
    assert rounds == [0]  # called once, before anything was sent
    assert email_dispatch(limit=3, on_backlog=lambda: rounds.append(len(mail.outbox))) == 2
    assert rounds == [0]  # a partial claim: no backlog
