"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

``webhook-signature`` is ``v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``, several
space-separated during a secret rotation. The key is the base64 part of the ``whsec_`` secret.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
# The spec recommends keys between 24 and 64 bytes.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
DEFAULT_SECRET_BYTES = 32


class InvalidSecret(ValueError):
    pass


def secret_generate(nbytes: int = DEFAULT_SECRET_BYTES) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; raises InvalidSecret unless it is 24-64 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"The secret must start with {SECRET_PREFIX}.")
    encoded = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("The secret must be whsec_ followed by standard base64.") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"The secret must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (got {len(key)})."
        )
    return key


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of exactly the bytes that are sent."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per active secret, space-separated."""
    return " ".join(sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)
