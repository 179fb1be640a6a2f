"""TLS for the relay: the operator's certificate, or a self-signed one made once into var/.

The self-signed pair lets the embedded default (`make run`) offer STARTTLS with no setup. It
is only good for development and for clients told not to verify (or to trust this file):
production sets ``SMTP_RELAY_TLS_CERT`` and ``SMTP_RELAY_TLS_KEY``.
"""

import datetime
import fcntl
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

logger = logging.getLogger("mailroom.smtp_relay")

SELF_SIGNED_DAYS = 365
# Made again this close to expiry, so a long-running development setup never serves a dead one.
RENEW_BEFORE = datetime.timedelta(days=7)


def server_ssl_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    # Purpose.CLIENT_AUTH: a server context that asks no client certificate (aiosmtpd warns
    # about any other verify mode) and keeps the library's secure protocol and cipher defaults.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


def self_signed_certificate(directory: Path, *, hostname: str) -> tuple[Path, Path]:
    """Return (cert, key) paths under ``directory``, generating the pair if missing or expiring.

    A file lock serialises generation, so two relay processes started together (port 587 and
    465) never end up with a certificate from one and a key from the other.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(cert_path, key_path, hostname):
            _generate(cert_path, key_path, hostname)
            logger.warning("Generated a self-signed TLS certificate for the SMTP relay at %s; set "
                           "SMTP_RELAY_TLS_CERT and SMTP_RELAY_TLS_KEY in production.", cert_path)
    return cert_path, key_path


def _usable(cert_path: Path, key_path: Path, hostname: str) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    now = datetime.datetime.now(datetime.UTC)
    return (cert.not_valid_after_utc - RENEW_BEFORE > now
            and hostname.lower() in [n.lower() for n in names.get_values_for_type(x509.DNSName)])


def _generate(cert_path: Path, key_path: Path, hostname: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mailroom SMTP relay (self-signed)")])
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([hostname, "localhost"])]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write(key_path, key_pem, mode=0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
