from django.db import connection
from django.test.utils import CaptureQueriesContext

from emails.models import Email, EmailEvent, EmailRecipient
from tests.conftest import assert_error, assert_ok

GOOD = {"from": "Acme <hello@acme.test>", "subject": "Hi", "text": "Hello"}


def _batch(api, key, items, **extra):
    return api(key).post("/api/v1/emails/batch", {"emails": items}, format="json", **extra)


def test_each_item_is_validated_on_its_own_and_valid_ones_are_queued(api, tenants, outbox_tasks,
                                                                     django_capture_on_commit_callbacks):
    items = [dict(GOOD, to="a@example.com"), dict(GOOD, to="not-an-address"), dict(GOOD, to="c@example.com",
                                                                                     tags=["x" * 65])]
    items.append(dict(GOOD, to="d@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        results = assert_ok(_batch(api, tenants.a1.live_key, items))["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[0]["status"] == "queued" and results[0]["id"].startswith("msg_")
    assert results[1]["error"]["code"] == "validation_error" and "to" in results[1]["error"]["details"]
    assert results[2]["error"]["details"] == {"tags.0": ["At most 64 characters."]}
    assert results[3]["status"] == "queued"
    stored = set(Email.objects.values_list("public_id", flat=True))
    assert stored == {results[0]["id"], results[3]["id"]}
    assert sorted(sum(outbox_tasks, [])) == sorted(Email.objects.values_list("pk", flat=True))


def test_a_batch_is_stored_with_bulk_inserts(api, tenants, outbox_tasks):
    items = [dict(GOOD, to=f"u{i}@example.com") for i in range(200)]
    with CaptureQueriesContext(connection) as queries:
        results = assert_ok(_batch(api, tenants.a1.live_key, items))["results"]
    assert all("id" in r for r in results)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    # emails, recipients, events, counters (+ usage rows the first time); SQLite splits a bulk
    # insert into chunks of its 999-parameter limit, still nothing like one insert per email.
    assert len(inserts) <= (6 if connection.vendor == "postgresql" else 25), inserts
    assert len(queries.captured_queries) < 40
    assert Email.objects.count() == 200 and EmailRecipient.objects.count() == 200
    assert EmailEvent.objects.filter(type="queued").count() == 200


def test_batch_limits(api, tenants):
    assert_error(_batch(api, tenants.a1.live_key, []), 422, "validation_error")
    error = assert_error(_batch(api, tenants.a1.live_key, [dict(GOOD, to="a@example.com")] * 501), 422,
                         "validation_error")
    assert error["details"] == {"emails": ["At most 500 emails per batch."]}
    assert_error(api(tenants.a1.live_key).post("/api/v1/emails/batch", {"nope": 1}, format="json"), 422,
                 "validation_error")
    assert Email.objects.count() == 0


def test_the_quota_admits_what_is_left_and_refuses_the_rest_per_item(api, tenants, outbox_tasks):
    plan = tenants.a1.account.plan
    plan.monthly_email_quota = 3
    plan.save()
    results = assert_ok(_batch(api, tenants.a1.live_key, [dict(GOOD, to=f"u{i}@example.com")
                                                          for i in range(5)]))["results"]
    assert ["id" in r for r in results] == [True, True, True, False, False]
    assert results[3]["error"]["code"] == "quota_exceeded"
    assert Email.objects.count() == 3
    test_results = assert_ok(_batch(api, tenants.a1.test_key, [dict(GOOD, to="t@example.com")]))["results"]
    assert "id" in test_results[0]


def test_a_batch_replays_with_its_idempotency_key(api, tenants, outbox_tasks):
    items = [dict(GOOD, to="a@example.com"), dict(GOOD, to="b@example.com")]
    first = _batch(api, tenants.a1.live_key, items, HTTP_IDEMPOTENCY_KEY="batch-1")
    second = _batch(api, tenants.a1.live_key, items, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert assert_ok(first)["results"] == assert_ok(second)["results"]
    assert second["X-Idempotent-Replay"] == "true"
    assert Email.objects.count() == 2
    assert_error(_batch(api, tenants.a1.live_key, items[:1], HTTP_IDEMPOTENCY_KEY="batch-1"), 422,
                 "idempotency_mismatch")


def test_a_batch_with_a_template_for_every_item_renders_each(api, tenants, outbox_tasks):
    client = api(tenants.a1.live_key)
    created = client.post("/api/v1/templates", {"name": "welcome", "subject": "Welcome {{ name }}",
                                                "html": "<p>Hi {{ name }}</p>", "text": "Hi {{ name }}"},
                          format="json")
    assert created.status_code == 201, created.content
    items = [{"from": "a@acme.test", "to": f"u{i}@example.com", "template_id": "welcome",
              "variables": {"name": f"User {i}"}} for i in range(3)]
    items.append({"from": "a@acme.test", "to": "x@example.com", "template_id": "welcome", "variables": {}})
    results = assert_ok(_batch(api, tenants.a1.live_key, items))["results"]
    assert results[3]["error"]["code"] == "invalid_variables"
    subjects = [Email.objects.get(public_id=r["id"]).subject for r in results[:3]]
    assert subjects == ["Welcome User 0", "Welcome User 1", "Welcome User 2"]
    email = Email.objects.get(public_id=results[0]["id"])
    assert email.template_id.startswith("tpl_") and email.template_version == 1
    assert email.html == "<p>Hi User 0</p>"
