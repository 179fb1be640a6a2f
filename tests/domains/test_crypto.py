"""Secrets at rest: Fernet under configured keys, or a key derived from SECRET_KEY."""

import base64
import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from domains import crypto
from domains.models import DkimKey


def test_it_round_trips_under_a_key_derived_from_the_secret_key(settings):
    settings.MAILROOM_ENCRYPTION_KEYS = []
    token = crypto.encrypt(b"secret")
    assert crypto.decrypt(token) == b"secret"
    assert Fernet(crypto.derive_key(settings.SECRET_KEY)).decrypt(token.encode()) == b"secret"


def test_the_derived_key_is_not_the_secret_key_itself(settings):
    settings.SECRET_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()  # would be a valid Fernet key raw
    settings.MAILROOM_ENCRYPTION_KEYS = []
    token = crypto.encrypt(b"secret")
    assert crypto.derive_key(settings.SECRET_KEY) != settings.SECRET_KEY.encode()
    with pytest.raises(InvalidToken):
        Fernet(settings.SECRET_KEY.encode()).decrypt(token.encode())


def test_configured_keys_rotate_newest_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILROOM_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt(b"secret")
    settings.MAILROOM_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == b"secret"
    rotated = crypto.reencrypt(token)
    settings.MAILROOM_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == b"secret"
    with pytest.raises(crypto.DecryptionError, match="was the key that encrypted it removed"):
        crypto.decrypt(token)


def test_a_malformed_key_is_a_configuration_error(settings):
    settings.MAILROOM_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="key #2 is not a Fernet key"):
        crypto.encrypt(b"x")


def test_the_reencrypt_command_moves_dkim_keys_to_the_newest_key(add_domain, tenants, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILROOM_ENCRYPTION_KEYS = [old]
    add_domain(tenants.a1, "example.com")
    pem = crypto.decrypt(DkimKey.objects.get().private_key_encrypted)
    settings.MAILROOM_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("reencrypt_secrets", stdout=out)
    assert out.getvalue() == "Re-encrypted 1 DKIM key(s).\n"
    settings.MAILROOM_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(DkimKey.objects.get().private_key_encrypted) == pem
