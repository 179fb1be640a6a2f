import json
from datetime import UTC, datetime

from webhooks.payloads import MAX_BODY_BYTES, build_body

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_the_payload_is_type_timestamp_and_data():
    body = build_body(event_type="email.sent", occurred_at=WHEN, data={"email_id": "msg_1", "at": WHEN})
    assert json.loads(body) == {"type": "email.sent", "timestamp": "2026-01-02T03:04:05.678Z",
                                "data": {"email_id": "msg_1", "at": "2026-01-02T03:04:05.678Z"}}


def test_long_strings_are_cut_first_when_the_body_is_over_20_kb():
    body = build_body(event_type="email.bounced", occurred_at=WHEN,
                      data={"email_id": "msg_1", "reason": "r" * 30_000, "recipient": "a@b.c"})
    assert len(body.encode()) <= MAX_BODY_BYTES
    data = json.loads(body)["data"]
    assert data["reason"] == "r" * 1024 + "…[truncated]"
    assert data["email_id"] == "msg_1" and data["recipient"] == "a@b.c"
    assert "_truncated" not in data


def test_the_largest_fields_are_dropped_and_named_when_cutting_is_not_enough():
    metadata = {f"k{i}": "v" * 500 for i in range(60)}  # 30 KB of short strings
    body = build_body(event_type="email.opened", occurred_at=WHEN,
                      data={"email_id": "msg_1", "recipient": "a@b.c", "metadata": metadata, "tags": ["x"]})
    assert len(body.encode()) <= MAX_BODY_BYTES
    data = json.loads(body)["data"]
    assert data == {"email_id": "msg_1", "recipient": "a@b.c", "tags": ["x"], "_truncated": ["metadata"]}


def test_small_payloads_are_untouched_and_unicode_is_sent_as_utf8():
    body = build_body(event_type="email.clicked", occurred_at=WHEN, data={"url": "https://例え.jp/ü"})
    assert "例え" in body
    assert json.loads(body)["data"] == {"url": "https://例え.jp/ü"}
