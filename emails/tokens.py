"""Signed, opaque tokens for tracking and unsubscribe links (django.core.signing)."""

from django.core import signing

UNSUBSCRIBE_SALT = "mailroom.unsubscribe"
UNSUBSCRIBE_MAX_AGE = 60 * 24 * 3600  # 60 days


def unsubscribe_token(*, email_public_id: str, recipient: str) -> str:
    return signing.dumps({"e": email_public_id, "r": recipient}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> dict | None:
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.BadSignature:
        return None
