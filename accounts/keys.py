"""API key material: generation and digests. Only the digest and a display prefix are stored."""

import hashlib
import hmac

from config.ids import random_token

KEY_PREFIXES = {"account": "mr_acct_", "live": "mr_live_", "test": "mr_test_"}
DISPLAY_PREFIX_LENGTH = 12


def key_generate(kind: str) -> str:
    return KEY_PREFIXES[kind] + random_token(40)


def key_digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def key_kind_of(raw_key: str) -> str | None:
    for kind, prefix in KEY_PREFIXES.items():
        if raw_key.startswith(prefix):
            return kind
    return None
