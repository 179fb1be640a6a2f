"""The JSON body of a webhook: ``{"type", "timestamp", "data"}``, at most 20 KB.

The body is serialised once, when the event is published, and the same bytes are sent (and
signed) on every attempt.
"""

import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

MAX_BODY_BYTES = 20 * 1024
# Strings in ``data`` longer than this are cut first when the body is too large.
MAX_STRING_CHARS = 1024
TRUNCATION_MARK = "…[truncated]"
# Never dropped: what a receiver needs to look the rest up through the API.
ESSENTIAL_KEYS = ("id", "email_id", "event_id", "recipient", "to", "domain", "status")


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def _size(value: Any) -> int:
    return len(_dumps(value).encode())


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + TRUNCATION_MARK
    if isinstance(value, dict):
        return {k: _cut_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(v, limit) for v in value]
    return value


def build_body(*, event_type: str, occurred_at: datetime, data: dict) -> str:
    """Serialise the payload, shrinking ``data`` until the body fits in 20 KB.

    First long strings are cut to 1,024 characters (ending in ``…[truncated]``); then the largest
    top-level fields of ``data`` are dropped, never the ones in ``ESSENTIAL_KEYS``; the names of
    dropped fields are listed in ``data["_truncated"]``.
    """
    # A round trip through JSON turns datetimes, UUIDs and Decimals into plain values first.
    data = json.loads(_dumps(data or {}))
    payload = {"type": event_type, "timestamp": format_timestamp(occurred_at), "data": data}
    body = _dumps(payload)
    if len(body.encode()) <= MAX_BODY_BYTES:
        return body

    data = _cut_strings(data, MAX_STRING_CHARS)
    dropped: list[str] = []
    candidates = sorted((k for k in data if k not in ESSENTIAL_KEYS), key=lambda k: _size(data[k]), reverse=True)
    while True:
        payload["data"] = {**data, "_truncated": dropped} if dropped else data
        body = _dumps(payload)
        if len(body.encode()) <= MAX_BODY_BYTES:
            return body
        if not candidates:
            # Only essential fields are left and they are still too big: cut them harder.
            payload["data"] = {**_cut_strings(data, 256), "_truncated": dropped}
            return _dumps(payload)
        key = candidates.pop(0)
        dropped.append(key)
        data = {k: v for k, v in data.items() if k != key}
