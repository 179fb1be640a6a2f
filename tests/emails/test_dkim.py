"""A live email from a verified domain reaches the SMTP server DKIM-signed, and the signature
verifies against the key published in (our local) DNS."""

import dkim
import pytest

from domains.dns import make_resolver
from domains.services import domain_add, domain_verify
from emails.models import Email
from emails.services import email_dispatch
from tests.conftest import assert_ok


@pytest.fixture
def verified_domain(dns_server, tenants, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    domain = domain_add(subaccount=tenants.a1.subaccount, domain="acme-mail.com")
    from domains import records

    dns_server.publish(records.dns_records(domain))
    domain = domain_verify(domain=domain)
    assert domain.status == "verified", domain.status
    return domain


def _dnsfunc(name: bytes, timeout: int = 5) -> bytes:
    """dkimpy's DNS hook, answered by the platform's own resolver (pointed at the test server)."""
    answer = make_resolver().resolve(name.decode().rstrip("."), "TXT")
    return b"".join(b"".join(r.strings) for r in answer)


def test_a_live_email_is_dkim_signed_and_the_signature_verifies(send, tenants, smtp_sink, outbox_tasks,
                                                                verified_domain, dns_server):
    data = assert_ok(send(tenants.a1.live_key, **{"from": "Acme <hello@acme-mail.com>"}, unsubscribe=True), 201)
    email = Email.objects.get(public_id=data["id"])
    email_dispatch(ids=[email.pk])
    [received] = smtp_sink.wait_for(1)
    raw = received["raw"]
    signature = received["message"]["DKIM-Signature"]
    assert "d=acme-mail.com" in signature
    signed = [h.strip() for h in signature.split("h=")[1].split(";")[0].replace("\r\n", "").split(":")]
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= {h.lower() for h in signed}
    assert dkim.verify(raw, dnsfunc=_dnsfunc)
    assert not dkim.verify(raw.replace(b"Subject: Hi", b"Subject: Hx"), dnsfunc=_dnsfunc)


def test_an_unverified_domain_is_refused_for_live_keys_but_not_test_keys(send, tenants, outbox_tasks, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    response = send(tenants.a1.live_key, **{"from": "hello@not-verified.com"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "domain_not_verified"
    assert Email.objects.count() == 0
    assert_ok(send(tenants.a1.test_key, **{"from": "hello@not-verified.com"}), 201)


def test_the_openssl_rsa_step_gives_dkimpys_exact_signature_bytes():
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from dkim import crypto

    from emails.dkim import rsassa_pkcs1_v1_5_sign

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    key = crypto.parse_pem_private_key(pem)
    for algorithm in ("sha256", "sha1"):
        digest = hashlib.new(algorithm, b"a message to sign")
        assert rsassa_pkcs1_v1_5_sign(digest, key) == crypto.RSASSA_PKCS1_v1_5_sign(digest, key)
