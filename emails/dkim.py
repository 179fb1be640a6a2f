"""DKIM signing with dkimpy."""

import dkim

# dkimpy's default header list leaves out List-Unsubscribe-Post (RFC 8058 section 4 requires
# both List-Unsubscribe headers to be covered), so the list is always given explicitly.
SIGNED_HEADERS = [
    b"from", b"to", b"cc", b"reply-to", b"subject", b"date", b"message-id", b"mime-version",
    b"content-type", b"list-unsubscribe", b"list-unsubscribe-post",
]


def dkim_sign(raw: bytes, *, domain: str, selector: str, private_key_pem: bytes) -> bytes:
    signature = dkim.sign(
        raw, selector.encode(), domain.encode(), private_key_pem,
        include_headers=SIGNED_HEADERS, canonicalize=(b"relaxed", b"relaxed"),
    )
    return signature + raw
