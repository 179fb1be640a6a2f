"""JSON bodies are typed exactly as the schema says: ``true`` is a boolean, ``"5"`` is not a number.

DRF's fields coerce for HTML forms: a BooleanField takes ``0``, ``"yes"`` or ``"on"``, a CharField
takes ``42``, an IntegerField takes ``"42"`` and ``4.0``. This API is JSON only and its clients are
generated from the OpenAPI schema, so a value of the wrong JSON type is a 422 naming the field, as
the schema promises (schemathesis checks that schema-violating bodies are refused). Query
parameters are strings by nature and keep DRF's parsing: a serializer fed a ``QueryDict`` is not
strict.

Installed once, from config/api/parsers.py (every API view uses that parser).
"""

from django.http import QueryDict
from rest_framework import fields

_installed = False


def _from_json(field) -> bool:
    data = getattr(field.root, "initial_data", None)
    return data is not None and not isinstance(data, QueryDict)


def _strict(field_class, accepts, message: str):
    original = field_class.to_internal_value

    def to_internal_value(self, data):
        if _from_json(self) and not accepts(self, data):
            raise fields.ValidationError(message, code="invalid")
        return original(self, data)

    field_class.to_internal_value = to_internal_value


def _is_int(_field, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_field, value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_choice(field, value) -> bool:
    # Choices of this API are strings; a choice field of integers would take integers.
    return isinstance(value, str) or any(not isinstance(key, str) for key in field.choices)


def _query_get_value(original):
    def get_value(self, dictionary):
        # DRF reads `?to_date=` (empty) as "not given", the way an HTML form leaves a field empty; in
        # a query string it is a value that is not a date, and the schema says so.
        if (isinstance(dictionary, QueryDict) and dictionary.get(self.field_name) == ""
                and not getattr(self, "allow_blank", False)):
            return ""
        return original(self, dictionary)

    return get_value


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    fields.Field.get_value = _query_get_value(fields.Field.get_value)
    _strict(fields.BooleanField, lambda _f, v: isinstance(v, bool), "Must be true or false.")
    _strict(fields.CharField, lambda _f, v: isinstance(v, str), "Must be a string.")
    _strict(fields.IntegerField, _is_int, "Must be a whole number.")
    _strict(fields.FloatField, _is_number, "Must be a number.")
    _strict(fields.ChoiceField, _is_choice, "Must be one of the listed strings.")
    for temporal in (fields.DateTimeField, fields.DateField):
        _strict(temporal, lambda _f, v: isinstance(v, str), "Must be an ISO 8601 string.")
