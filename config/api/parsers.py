import io
import json

from django.conf import settings
from rest_framework.parsers import JSONParser

from config.api import strict
from config.api.errors import BadRequest, PayloadTooLarge

strict.install()  # JSON bodies typed exactly: see config/api/strict.py


class LimitedJSONParser(JSONParser):
    """JSON parser that refuses bodies over the view's ``max_body_bytes`` with 413.

    The limit is checked against Content-Length before reading, and again on the bytes read
    (a chunked body has no length), so a large body is never parsed.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        view = parser_context.get("view")
        limit = getattr(view, "max_body_bytes", None) or settings.MAILROOM_MAX_BODY_BYTES
        request = parser_context.get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"The request body is over the {limit} byte limit of this endpoint.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is over the {limit} byte limit of this endpoint.")
        try:
            return json.load(io.BytesIO(raw), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Malformed JSON: {exc}") from exc


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
