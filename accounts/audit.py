"""The operators' audit log: every action and edit made in the admin, who made it and when.

The admin site (config/admin_site.py) writes these rows for every model admin, so an action
only has to say how each object fared (``audit_outcome``) when "done" is not the whole story.
"""

from collections.abc import Iterable

from django.db import models

from accounts.models import AuditLog

MAX_REPR = 200


def _actor_fields(actor) -> dict:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_username": "(system)"}
    return {"actor": actor, "actor_username": actor.get_username()}


def _target_fields(target: models.Model | None) -> dict:
    if target is None:
        return {"object_type": "", "object_id": "", "object_repr": ""}
    return {"object_type": target._meta.label_lower, "object_id": str(target.pk),
            "object_repr": str(target)[:MAX_REPR]}


def audit_record(*, actor, action: str, target: models.Model | None = None, details: dict | None = None,
                 ip: str | None = None) -> AuditLog:
    return AuditLog.objects.create(action=action, details=details or {}, ip=ip or None,
                                   **_actor_fields(actor), **_target_fields(target))


def audit_record_many(*, actor, action: str, targets: Iterable[models.Model],
                      details: dict | None = None, details_of=None, ip: str | None = None) -> list[AuditLog]:
    """One row per target in one INSERT; ``details_of(target)`` adds per-target details."""
    actor_fields = _actor_fields(actor)
    rows = [AuditLog(action=action, ip=ip or None, details={**(details or {}), **(details_of(t) if details_of else {})},
                     **actor_fields, **_target_fields(t)) for t in targets]
    return AuditLog.objects.bulk_create(rows)


def audit_outcome(request, target: models.Model, outcome: str) -> None:
    """Tell the audit log how an admin action fared for one object ("skipped: ...", "refused: ...").

    Objects the action says nothing about are recorded as "done".
    """
    outcomes = getattr(request, "_audit_outcomes", None)
    if outcomes is None:
        outcomes = request._audit_outcomes = {}
    outcomes[str(target.pk)] = outcome


def audit_outcomes_take(request) -> dict[str, str]:
    return request.__dict__.pop("_audit_outcomes", None) or {}
