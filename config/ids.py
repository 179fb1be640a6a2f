"""Public ids: a short prefix and 24 random base62 characters (``msg_3Jf...``)."""

import secrets
import string

from django.db import models

_ALPHABET = string.ascii_letters + string.digits


# byte -> alphabet[byte % 62]: one C-level translate instead of a Python loop per character
# (ids are minted 500 at a time in batch sends). The modulo bias is tiny: 8 of the 62
# characters are 5/256 likely instead of 4/256, leaving over 5.9 bits per character.
_TRANSLATE = bytes(_ALPHABET[b % len(_ALPHABET)].encode()[0] for b in range(256))


def random_token(length: int) -> str:
    return secrets.token_bytes(length).translate(_TRANSLATE).decode()


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{random_token(24)}"


class PublicIdField(models.CharField):
    """A unique, prefixed, random id filled on first save (bulk_create included)."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for key, default in (("max_length", 40), ("unique", True), ("editable", False)):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = new_public_id(self.prefix)
            setattr(model_instance, self.attname, value)
        return value
