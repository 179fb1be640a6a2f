import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from emails.models import Email, EmailAttachment, EmailEvent, EmailRecipient, IdempotencyRecord, Suppression
from emails.serializers import EmailOutput
from tests.conftest import assert_error, assert_ok


def _row_counts():
    return (Email.objects.count(), EmailRecipient.objects.count(), EmailEvent.objects.count(),
            EmailAttachment.objects.count())


def test_it_accepts_an_email_and_returns_the_resource(send, tenants, outbox_tasks,
                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(tenants.a1.live_key, to=["Ann <ann@example.com>", "bob@example.com"],
                        cc="carol@example.com", tags=["welcome"], metadata={"user_id": 42})
    data = assert_ok(response, 201)
    assert data["id"].startswith("msg_")
    assert data["status"] == "queued"
    assert data["from"] == "Acme <hello@acme.test>"
    assert data["to"] == ["Ann <ann@example.com>", "bob@example.com"]
    assert data["cc"] == ["carol@example.com"]
    assert data["environment"] == "live"
    assert data["tags"] == ["welcome"] and data["metadata"] == {"user_id": 42}
    assert data["replayed"] is False
    email = Email.objects.get(public_id=data["id"])
    assert email.subaccount == tenants.a1.subaccount
    assert sorted(email.recipients.values_list("address", flat=True)) == [
        "ann@example.com", "bob@example.com", "carol@example.com"]
    assert list(email.events.values_list("type", flat=True)) == ["queued"]
    assert outbox_tasks == [[email.pk]]
    # The response is built from the values sent to the database, not read back: it must say
    # what a read of the stored row says.
    stored = EmailOutput(email).data
    assert {key: value for key, value in data.items() if key != "replayed"} == stored
    assert stored["created_at"] is not None


def test_a_test_key_sends_in_the_test_environment(send, tenants, outbox_tasks):
    data = assert_ok(send(tenants.a1.test_key), 201)
    assert data["environment"] == "test"


def test_a_scheduled_email_is_stored_as_scheduled_and_not_published(send, tenants, outbox_tasks,
                                                                    django_capture_on_commit_callbacks):
    when = (timezone.now() + timedelta(hours=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        data = assert_ok(send(tenants.a1.live_key, scheduled_at=when), 201)
    assert data["status"] == "scheduled"
    assert outbox_tasks == []
    assert list(EmailEvent.objects.filter(email__public_id=data["id"]).values_list("type", flat=True)) == [
        "scheduled"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"from": None}, "from"),
    ({"from": "not-an-address"}, "from"),
    ({"from": "a@b.com\r\nBcc: evil@x.com"}, "from"),
    ({"to": None}, "to"),
    ({"to": [f"u{i}@example.com" for i in range(51)]}, "to"),
    ({"to": ["ok@example.com", "bad@"]}, "to.1"),
    ({"subject": None}, "subject"),
    ({"subject": "line\nbreak"}, "subject"),
    ({"text": None}, "html"),
    ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
    ({"tags": ["x" * 65]}, "tags.0"),
    ({"tags": ["has space"]}, "tags.0"),
    ({"headers": {"From": "x@y.com"}}, "headers.From"),
    ({"headers": {"Message-ID": "<x@y>"}}, "headers.Message-ID"),
    ({"headers": {"DKIM-Signature": "v=1"}}, "headers.DKIM-Signature"),
    ({"headers": {"Content-Type": "text/plain"}}, "headers.Content-Type"),
    ({"headers": {"X-Ok": "a\r\nBcc: evil@x.com"}}, "headers.X-Ok"),
    ({"metadata": {"nested": {"a": 1}}}, "metadata.nested"),
    ({"attachments": [{"filename": "a.txt", "content": "!!notbase64!!"}]}, "attachments.0.content"),
    ({"attachments": [{"filename": "../etc/passwd", "content": "aGk="}]}, "attachments.0.filename"),
    ({"attachments": [{"filename": f"{i}.txt", "content": "aGk="} for i in range(11)]}, "attachments"),
    ({"scheduled_at": "2001-01-01T00:00:00Z"}, "scheduled_at"),
    ({"scheduled_at": "tomorrow"}, "scheduled_at"),
    ({"template_id": "tpl_x", "text": "both"}, "template_id"),
    ({"variables": {"a": 1}}, "variables"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"track_opens": "yes"}, "track_opens"),
])
def test_each_validation_rule_is_a_422_naming_the_field_and_writes_nothing(send, tenants, outbox_tasks,
                                                                           fields, field):
    before = _row_counts()
    error = assert_error(send(tenants.a1.live_key, **fields), 422, "validation_error")
    assert field in error["details"], error
    assert _row_counts() == before
    assert outbox_tasks == []


def test_scheduling_more_than_30_days_ahead_is_refused(send, tenants):
    when = (timezone.now() + timedelta(days=31)).isoformat()
    error = assert_error(send(tenants.a1.live_key, scheduled_at=when), 422, "validation_error")
    assert error["details"]["scheduled_at"] == ["At most 30 days ahead."]


def test_attachments_over_10_mib_decoded_are_413_and_write_nothing(send, tenants):
    big = base64.b64encode(b"x" * (5 * 1024 * 1024 + 1)).decode()
    before = _row_counts()
    assert_error(send(tenants.a1.live_key, attachments=[{"filename": "a.bin", "content": big},
                                                        {"filename": "b.bin", "content": big}]),
                 413, "payload_too_large")
    assert _row_counts() == before


def test_attachments_are_stored_with_metadata_but_never_returned(send, api, tenants, outbox_tasks):
    content = base64.b64encode(b"%PDF-1.4 hello").decode()
    data = assert_ok(send(tenants.a1.live_key, attachments=[{"filename": "invoice.pdf", "content": content}]), 201)
    detail = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{data['id']}"))
    assert detail["attachments"] == [{"filename": "invoice.pdf", "content_type": "application/pdf", "size": 14}]


def test_an_unknown_template_is_template_not_found(send, tenants):
    before = _row_counts()
    error = assert_error(send(tenants.a1.live_key, subject=None, text=None, template_id="nope"), 422,
                         "template_not_found")
    assert error["message"]
    assert _row_counts() == before


def test_the_send_scope_is_required(api, tenants):
    from tests.factories import make_key

    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:read"])
    response = api(key).post("/api/v1/emails", {"from": "a@acme.test", "to": "b@example.com", "subject": "s",
                                                "text": "t"}, format="json")
    assert_error(response, 403, "authorization_error")
    assert Email.objects.count() == 0


# --- quota ----------------------------------------------------------------------------------

def test_live_mail_over_the_monthly_quota_is_429_and_test_mail_does_not_count(send, tenants, outbox_tasks):
    plan = tenants.a1.account.plan
    plan.monthly_email_quota = 2
    plan.save()
    assert_ok(send(tenants.a1.live_key), 201)
    assert_ok(send(tenants.a2.live_key), 201)  # quota is per account: a2 shares a1's account
    before = _row_counts()
    assert_error(send(tenants.a1.live_key), 429, "quota_exceeded")
    assert _row_counts() == before
    assert_ok(send(tenants.a1.test_key), 201)
    assert_ok(send(tenants.b1.live_key), 201)  # another account has its own quota


# --- suppressions ---------------------------------------------------------------------------

def test_a_send_to_only_suppressed_recipients_is_422_naming_them(send, api, tenants):
    assert_ok(api(tenants.a1.live_key).post("/api/v1/suppressions", {"address": "Gone@Example.com"},
                                            format="json"), 201)
    before = _row_counts()
    error = assert_error(send(tenants.a1.live_key, to="gone@example.com"), 422, "recipient_suppressed")
    assert error["details"] == {"to": ["gone@example.com is suppressed."]}
    assert _row_counts() == before


def test_suppressed_cc_and_partial_to_are_dropped_with_a_suppressed_event(send, api, tenants, outbox_tasks):
    for address in ("gone@example.com", "cc-gone@example.com"):
        assert_ok(api(tenants.a1.live_key).post("/api/v1/suppressions", {"address": address}, format="json"), 201)
    data = assert_ok(send(tenants.a1.live_key, to=["ok@example.com", "gone@example.com"],
                          cc="cc-gone@example.com"), 201)
    email = Email.objects.get(public_id=data["id"])
    assert set(email.recipients.filter(suppressed=True).values_list("address", flat=True)) == {
        "gone@example.com", "cc-gone@example.com"}
    assert sorted(email.events.filter(type="suppressed").values_list("recipient", flat=True)) == [
        "cc-gone@example.com", "gone@example.com"]


def test_suppressions_belong_to_one_subaccount(send, api, tenants, outbox_tasks):
    assert_ok(api(tenants.a1.live_key).post("/api/v1/suppressions", {"address": "x@example.com"},
                                            format="json"), 201)
    assert assert_ok(api(tenants.a2.live_key).get("/api/v1/suppressions"))["suppressions"] == []
    assert_ok(send(tenants.a2.live_key, to="x@example.com"), 201)
    assert_error(api(tenants.a2.live_key).delete("/api/v1/suppressions/x@example.com"), 404, "not_found")
    response = api(tenants.a1.live_key).delete("/api/v1/suppressions/x@example.com")
    assert response.status_code == 204
    assert Suppression.objects.count() == 0


def test_suppression_list_and_add_validate(api, tenants):
    client = api(tenants.a1.live_key)
    error = assert_error(client.post("/api/v1/suppressions", {"address": "nope", "reason": "bogus"},
                                     format="json"), 422, "validation_error")
    assert set(error["details"]) == {"address", "reason"}
    assert_ok(client.post("/api/v1/suppressions", {"address": "a@example.com", "reason": "complaint"},
                          format="json"), 201)
    again = assert_ok(client.post("/api/v1/suppressions", {"address": "A@example.com"}, format="json"), 200)
    assert again["reason"] == "complaint"  # the first reason is kept
    listed = assert_ok(client.get("/api/v1/suppressions?reason=complaint"))
    assert [s["address"] for s in listed["suppressions"]] == ["a@example.com"]
    assert listed["pagination"] == {"total": 1, "limit": 20, "offset": 0, "has_more": False}


# --- idempotency ----------------------------------------------------------------------------

def test_the_same_idempotency_key_and_body_replays_the_first_response(send, tenants, outbox_tasks):
    first = send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "order-1"})
    second = send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "order-1"})
    one, two = assert_ok(first, 201), assert_ok(second, 201)
    assert two["id"] == one["id"]
    assert two["replayed"] is True and one["replayed"] is False
    assert second["X-Idempotent-Replay"] == "true"
    assert Email.objects.count() == 1


def test_an_idempotency_key_in_the_body_works_like_the_header(send, tenants, outbox_tasks):
    one = assert_ok(send(tenants.a1.live_key, idempotency_key="k-body"), 201)
    two = assert_ok(send(tenants.a1.live_key, idempotency_key="k-body"), 201)
    assert one["id"] == two["id"] and two["replayed"] is True


def test_the_same_key_with_another_body_is_idempotency_mismatch(send, tenants, outbox_tasks):
    assert_ok(send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "k1"}), 201)
    assert_error(send(tenants.a1.live_key, subject="Other", http_headers={"HTTP_IDEMPOTENCY_KEY": "k1"}), 422,
                 "idempotency_mismatch")
    assert Email.objects.count() == 1


def test_a_key_still_in_flight_is_idempotency_conflict(send, tenants, outbox_tasks):
    from emails.services.idempotency import request_fingerprint

    body = {"from": "Acme <hello@acme.test>", "to": "user@example.com", "subject": "Hi", "text": "Hello"}
    IdempotencyRecord.objects.create(subaccount=tenants.a1.subaccount, key="busy", request_hash=request_fingerprint(body),
                                     expires_at=timezone.now() + timedelta(hours=24))
    assert_error(send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "busy"}), 409, "idempotency_conflict")


def test_idempotency_keys_are_scoped_to_the_subaccount(send, tenants, outbox_tasks):
    one = assert_ok(send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "same"}), 201)
    two = assert_ok(send(tenants.b1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "same"}), 201)
    assert one["id"] != two["id"] and two["replayed"] is False


def test_a_rejected_request_frees_its_idempotency_key(send, tenants, outbox_tasks):
    assert_error(send(tenants.a1.live_key, subject=None, http_headers={"HTTP_IDEMPOTENCY_KEY": "retry-me"}), 422,
                 "validation_error")
    assert_ok(send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "retry-me"}), 201)


def test_idempotency_key_over_255_characters_is_refused(send, tenants):
    assert_error(send(tenants.a1.live_key, http_headers={"HTTP_IDEMPOTENCY_KEY": "k" * 256}), 422, "validation_error")


# --- reading --------------------------------------------------------------------------------

def test_list_filters_and_pagination(send, api, tenants, outbox_tasks):
    assert_ok(send(tenants.a1.live_key, to="a@example.com", tags=["welcome"]), 201)
    assert_ok(send(tenants.a1.live_key, to="b@example.com", tags=["reset"], **{"from": "x@other.test"}), 201)
    assert_ok(send(tenants.a1.test_key, to="c@example.com"), 201)
    client = api(tenants.a1.live_key)

    def ids(query):
        return [e["to"] for e in assert_ok(client.get(f"/api/v1/emails{query}"))["emails"]]

    assert ids("?tag=welcome") == [["a@example.com"]]
    assert ids("?to=B@example.com") == [["b@example.com"]]
    assert ids("?domain=other.test") == [["b@example.com"]]
    assert ids("?from=x@other.test") == [["b@example.com"]]
    assert ids("?environment=test") == [["c@example.com"]]
    assert ids("?status=queued&limit=1&offset=1") == [["b@example.com"]]
    page = assert_ok(client.get("/api/v1/emails?limit=2"))
    assert page["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}
    assert_error(client.get("/api/v1/emails?status=bogus"), 422, "validation_error")
    assert_error(client.get("/api/v1/emails?limit=101"), 422, "validation_error")


def test_another_subaccount_never_sees_an_email(send, api, tenants, outbox_tasks):
    data = assert_ok(send(tenants.a1.live_key), 201)
    for other in (tenants.a2.live_key, tenants.b1.live_key):
        client = api(other)
        assert assert_ok(client.get("/api/v1/emails"))["emails"] == []
        for method, path in (("get", ""), ("get", "/events"), ("post", "/cancel"), ("post", "/resend"),
                             ("delete", ""), ("patch", "")):
            response = getattr(client, method)(f"/api/v1/emails/{data['id']}{path}", {}, format="json")
            assert_error(response, 404, "not_found")
    assert Email.objects.get(public_id=data["id"]).status == "queued"


def test_detail_shows_bodies_headers_events_and_attempts(send, api, tenants, outbox_tasks):
    data = assert_ok(send(tenants.a1.live_key, html="<p>Hi</p>", headers={"X-Campaign": "c1"}), 201)
    detail = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{data['id']}"))
    assert detail["html"] == "<p>Hi</p>" and detail["text"] == "Hello"
    assert detail["headers"] == {"X-Campaign": "c1"}
    assert [e["type"] for e in detail["events"]] == ["queued"]
    assert detail["delivery_attempts"] == []
    assert detail["message_id"] == f"<{data['id']}@acme.test>"
    events = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{data['id']}/events"))
    assert [e["type"] for e in events["events"]] == ["queued"]
    assert set(events["events"][0]) == {"id", "type", "timestamp", "recipient", "data"}


# --- cancel, reschedule, resend ---------------------------------------------------------------

def test_cancel_works_for_queued_and_scheduled_only(send, api, tenants, outbox_tasks):
    client = api(tenants.a1.live_key)
    queued = assert_ok(send(tenants.a1.live_key), 201)
    scheduled = assert_ok(send(tenants.a1.live_key,
                               scheduled_at=(timezone.now() + timedelta(hours=1)).isoformat()), 201)
    assert assert_ok(client.post(f"/api/v1/emails/{queued['id']}/cancel"))["status"] == "cancelled"
    assert assert_ok(client.delete(f"/api/v1/emails/{scheduled['id']}"))["status"] == "cancelled"
    assert_error(client.post(f"/api/v1/emails/{queued['id']}/cancel"), 409, "conflict")
    Email.objects.filter(public_id=queued["id"]).update(status="sending")
    assert_error(client.post(f"/api/v1/emails/{queued['id']}/cancel"), 409, "conflict")
    assert list(Email.objects.get(public_id=scheduled["id"]).events.values_list("type", flat=True)) == [
        "scheduled", "cancelled"]


def test_reschedule_only_while_scheduled(send, api, tenants, outbox_tasks):
    client = api(tenants.a1.live_key)
    scheduled = assert_ok(send(tenants.a1.live_key,
                               scheduled_at=(timezone.now() + timedelta(hours=1)).isoformat()), 201)
    later = timezone.now() + timedelta(hours=5)
    data = assert_ok(client.patch(f"/api/v1/emails/{scheduled['id']}", {"scheduled_at": later.isoformat()},
                                  format="json"))
    assert data["scheduled_at"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    assert_error(client.patch(f"/api/v1/emails/{scheduled['id']}", {"scheduled_at": "2001-01-01T00:00:00Z"},
                              format="json"), 422, "validation_error")
    queued = assert_ok(send(tenants.a1.live_key), 201)
    assert_error(client.patch(f"/api/v1/emails/{queued['id']}", {"scheduled_at": later.isoformat()},
                              format="json"), 409, "conflict")


def test_resend_creates_a_new_email_with_the_same_content(send, api, tenants, outbox_tasks):
    content = base64.b64encode(b"data").decode()
    original = assert_ok(send(tenants.a1.live_key, html="<b>x</b>", cc="c@example.com", tags=["t"],
                              attachments=[{"filename": "a.txt", "content": content}]), 201)
    again = assert_ok(api(tenants.a1.live_key).post(f"/api/v1/emails/{original['id']}/resend"), 201)
    assert again["id"] != original["id"]
    a, b = Email.objects.get(public_id=original["id"]), Email.objects.get(public_id=again["id"])
    assert (a.subject, a.html, a.text, a.to, a.cc, a.tags) == (b.subject, b.html, b.text, b.to, b.cc, b.tags)
    assert bytes(b.attachments.get().content) == b"data"
