"""Secrets encrypted at rest (DKIM private keys; reusable by any app).

Fernet tokens under ``settings.MAILROOM_ENCRYPTION_KEYS`` (comma-separated, newest first).
MultiFernet encrypts with the first key and decrypts with any of them, so an operator rotates
by putting a new key in front, running ``manage.py reencrypt_secrets``, then dropping the old.

With no key configured one is derived from ``SECRET_KEY`` through HKDF with a salt of its own:
the raw ``SECRET_KEY`` (which also signs sessions) is never used as an encryption key.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_DERIVATION_SALT = b"mailroom.secrets-at-rest.v1"
_DERIVATION_INFO = b"mailroom fernet key"


class DecryptionError(Exception):
    """A token none of the configured keys can open (a key was dropped too early)."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from ``secret_key``; deterministic so every process agrees."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_DERIVATION_SALT,
               info=_DERIVATION_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        return MultiFernet([Fernet(derive_key(secret_key))])
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"MAILROOM_ENCRYPTION_KEYS: key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from exc
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    # Keyed on the settings' values so tests (and a reloaded configuration) get a fresh one.
    return _fernet(tuple(settings.MAILROOM_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(data: bytes) -> str:
    return fernet().encrypt(data).decode("ascii")


def decrypt(token: str) -> bytes:
    try:
        return fernet().decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with MAILROOM_ENCRYPTION_KEYS; "
            "was the key that encrypted it removed?"
        ) from exc


def reencrypt(token: str) -> str:
    """The same secret under the newest key (a no-op in effect if it already is)."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise DecryptionError("A stored secret cannot be decrypted with MAILROOM_ENCRYPTION_KEYS.") from exc
