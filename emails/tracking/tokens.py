"""Open and click tokens (see emails/tokens.py for the sealing).

The payload is (kind, email id, link index): 21 bytes, 50 characters once sealed. The kind is
inside, so an open token is never accepted as a click token. Checking a token costs no query,
so junk is turned away before the database is asked anything. These tokens do not expire: a
link in an old email keeps working as long as the email is stored.
"""

import struct
from dataclasses import dataclass

from emails.tokens import public_id_pack, public_id_unpack, seal, unseal

_PURPOSE = "mailroom.tracking"
_KINDS = {"o": 1, "c": 2}
_LAYOUT = struct.Struct(">B18sH")  # kind, email id, link index
TOKEN_LENGTH = 50
MAX_LINK_INDEX = 65535


@dataclass(frozen=True)
class TrackingToken:
    kind: str  # "o" open, "c" click
    email_public_id: str
    link_index: int = 0


def tracking_token(*, kind: str, email_public_id: str, link_index: int = 0) -> str:
    if not 0 <= link_index <= MAX_LINK_INDEX:
        raise ValueError("link_index out of range")
    return seal(_LAYOUT.pack(_KINDS[kind], public_id_pack(email_public_id, prefix="msg"), link_index),
                purpose=_PURPOSE)


def tracking_token_read(token: str, *, kind: str) -> TrackingToken | None:
    """The token's content, or None for anything that is not a ``kind`` token we made."""
    if len(token) != TOKEN_LENGTH:
        return None
    payload = unseal(token, purpose=_PURPOSE, max_length=TOKEN_LENGTH)
    if payload is None or len(payload) != _LAYOUT.size:
        return None
    kind_code, id_bytes, link_index = _LAYOUT.unpack(payload)
    if kind_code != _KINDS[kind]:
        return None
    return TrackingToken(kind=kind, email_public_id=public_id_unpack(id_bytes, prefix="msg"), link_index=link_index)
