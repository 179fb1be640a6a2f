"""Building model instances without Django's keyword-argument path.

``Model(**kwargs)`` walks every field, pops each keyword and looks defaults up one by one:
about half of a 500-email batch's CPU went there (three instances per email, the email having
~40 fields). Positional construction, which Django itself uses for rows read from the
database, skips that work; the defaults are worked out here the same way Django does.
"""

from functools import cache

from django.db import models


@cache
def _fields(model: type[models.Model]) -> tuple[tuple[str, object], ...]:
    # (attname, callable returning the field's default), in concrete-field order
    return tuple((f.attname, f._get_default) for f in model._meta.concrete_fields)


@cache
def _attnames(model: type[models.Model]) -> frozenset[str]:
    return frozenset(name for name, _ in _fields(model))


def instance(model: type[models.Model], **values):
    """``model(**values)`` for values given by attname (``subaccount_id``, not ``subaccount``)."""
    unknown = values.keys() - _attnames(model)
    if unknown:
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)}")
    return model(*[values[name] if name in values else default() for name, default in _fields(model)])
