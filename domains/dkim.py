"""DKIM key material: RSA-2048 keys made with cryptography, selectors, the signing key type."""

import base64
import secrets
import string
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

KEY_BITS = 2048
_SELECTOR_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class DkimSigningKey:
    """What the worker needs to sign for one domain (dkimpy's ``sign(selector, domain, privkey)``)."""

    domain: str
    selector: str
    private_key_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class GeneratedKey:
    public_key_b64: str
    private_key_pem: bytes = field(repr=False)


def generate_key(bits: int = KEY_BITS) -> GeneratedKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    # PKCS#1 PEM ("BEGIN RSA PRIVATE KEY") is what dkimpy and opendkim read without fuss.
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    # RFC 6376 3.6.1: p= is the base64 of the DER SubjectPublicKeyInfo.
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return GeneratedKey(public_key_b64=base64.b64encode(der).decode("ascii"), private_key_pem=pem)


def new_selector() -> str:
    """``mr<yyyymm><4 random>``: dated so operators can tell keys apart, random so two
    rotations in a month never collide."""
    suffix = "".join(secrets.choice(_SELECTOR_ALPHABET) for _ in range(4))
    return f"mr{timezone.now():%Y%m}{suffix}"
