"""Signed, opaque tokens for tracking and unsubscribe links.

Tokens are ``base64url(AES-SIV(payload))``: authenticated encryption (RFC 5297), so a changed
character fails like a bad signature, and nothing (email id, address) can be read from a link.
Keys are derived from ``SECRET_KEY`` per purpose; ``SECRET_KEY_FALLBACKS`` keep links in sent
mail working across a key rotation. SIV is deterministic: the same payload, the same token.
"""

import base64
import binascii
import functools
import string
import struct
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings
from django.utils.crypto import salted_hmac

UNSUBSCRIBE_SALT = "mailroom.unsubscribe"
UNSUBSCRIBE_MAX_AGE = 60 * 24 * 3600  # 60 days

_ALPHABET = string.ascii_letters + string.digits  # config.ids.random_token's alphabet
_ID_LENGTH = 24
ID_BYTES = 18  # 62**24 < 2**143


@functools.lru_cache(maxsize=16)
def _cipher(secret: str, purpose: str) -> AESSIV:
    return AESSIV(salted_hmac(purpose, "aes-siv-512", secret=secret, algorithm="sha512").digest())


def _secrets() -> tuple[str, ...]:
    return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))


def seal(plaintext: bytes, *, purpose: str) -> str:
    sealed = _cipher(settings.SECRET_KEY, purpose).encrypt(plaintext, [purpose.encode()])
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def unseal(token: str, *, purpose: str, max_length: int = 512) -> bytes | None:
    """The payload of a token we sealed for ``purpose``; None for anything else."""
    if not token or len(token) > max_length:
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii") != token:
        return None  # one token, one spelling
    for secret in _secrets():
        try:
            return _cipher(secret, purpose).decrypt(sealed, [purpose.encode()])
        except (InvalidTag, ValueError):
            continue
    return None


def public_id_pack(public_id: str, *, prefix: str) -> bytes:
    """The random part of a ``prefix_...`` public id as 18 bytes."""
    given_prefix, _, random_part = public_id.partition("_")
    if given_prefix != prefix or len(random_part) != _ID_LENGTH or any(c not in _ALPHABET for c in random_part):
        raise ValueError(f"Not a {prefix}_ public id: {public_id!r}")
    number = 0
    for char in random_part:
        number = number * 62 + _ALPHABET.index(char)
    return number.to_bytes(ID_BYTES, "big")


def public_id_unpack(raw: bytes, *, prefix: str) -> str:
    number = int.from_bytes(raw, "big")
    chars = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


_UNSUBSCRIBE = struct.Struct(">18sI")  # email id, issued at (unix seconds)


def unsubscribe_token(*, email_public_id: str, recipient: str) -> str:
    payload = _UNSUBSCRIBE.pack(public_id_pack(email_public_id, prefix="msg"), int(time.time()))
    return seal(payload + recipient.encode("utf-8"), purpose=UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> dict | None:
    """``{"e": email public id, "r": recipient}``, or None when forged, altered or expired."""
    payload = unseal(token, purpose=UNSUBSCRIBE_SALT)
    if payload is None or len(payload) <= _UNSUBSCRIBE.size:
        return None
    id_bytes, issued_at = _UNSUBSCRIBE.unpack_from(payload)
    if not 0 <= time.time() - issued_at <= UNSUBSCRIBE_MAX_AGE:
        return None
    try:
        recipient = payload[_UNSUBSCRIBE.size:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {"e": public_id_unpack(id_bytes, prefix="msg"), "r": recipient}
