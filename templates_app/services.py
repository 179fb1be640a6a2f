"""Writes of templates (every content change is a new immutable version) and rendering for sends."""

import re
import threading
import time
from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import SubAccount
from config.api.errors import Conflict, InvalidVariables, NotFound, TemplateNotFound, ValidationError
from templates_app import rendering, selectors
from templates_app.models import Template, TemplateVersion
from templates_app.rendering import PreparedTemplate, RenderedTemplate

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# "validate" would be shadowed by the POST /templates/validate route.
_RESERVED_NAMES = {"validate"}
_CONTENT_FIELDS = ("subject", "html", "text")
_UPDATE_ATTEMPTS = 3
# How long a process reuses a resolved (sub-account, template ref) -> current version: a batch of
# 500 sends with one template then costs one lookup, not 500. Writes through this module forget
# the process's entries at once; other processes see a change within this many seconds.
SEND_LOOKUP_TTL_SECONDS = 1.0
_SEND_LOOKUP_MAX_ENTRIES = 4096
_send_lookups: dict[tuple[str, str], tuple[float, tuple[str, int, int]]] = {}
_send_lookups_lock = threading.Lock()


def template_name_problem(name) -> str | None:
    if not isinstance(name, str) or not _NAME.match(name):
        return ("Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(the name is used in URLs and in send requests).")
    if name.lower().startswith(selectors.PUBLIC_ID_PREFIX):
        return f"Names cannot start with {selectors.PUBLIC_ID_PREFIX!r}: that is how template ids start."
    if name.lower() in _RESERVED_NAMES:
        return f"{name!r} is reserved."
    return None


def _blank_to_none(value: str | None) -> str | None:
    return value if value else None


def _presence_problems(content: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not content.get("subject") or not content["subject"].strip():
        errors["subject"] = ["A template needs a subject."]
    if content.get("html") is None and content.get("text") is None:
        errors["html"] = ["A template needs html or text (or both)."]
    return errors


def _syntax_problems(content: dict) -> tuple[dict[str, list[str]], list[str]]:
    """Compile every given field: (errors per field, variables used)."""
    check = rendering.validate_sources(**content)
    return rendering.problems_as_details(check.errors), list(check.variables)


def _duplicate(name: str) -> Conflict:
    return Conflict(f"A template named {name!r} already exists.", details={"name": ["Already exists."]})


def template_create(*, subaccount: SubAccount, name: str, subject: str, html: str | None = None,
                    text: str | None = None) -> Template:
    content = {"subject": subject, "html": _blank_to_none(html), "text": _blank_to_none(text)}
    errors = _presence_problems(content)
    if problem := template_name_problem(name):
        errors["name"] = [problem]
    syntax, variables = _syntax_problems(content)
    for field, messages in syntax.items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError("The template is invalid.", details=errors)
    if subaccount.templates.filter(name=name, deleted_at__isnull=True).exists():
        raise _duplicate(name)
    try:
        with transaction.atomic():
            template = Template.objects.create(subaccount=subaccount, name=name)
            version = TemplateVersion.objects.create(template=template, number=1, variables=variables, **content)
            template.current_version = version
            template.save(update_fields=["current_version", "updated_at"])
    except IntegrityError as exc:  # a concurrent create took the name between check and insert
        raise _duplicate(name) from exc
    return template


def template_update(*, template: Template, **changes) -> Template:
    """Rename and/or change content; a content change stores version N+1 and points at it.

    Only the given fields change (PATCH). Compiling happens before the row lock; if another
    update lands in between, the merge is redone on the newer version.
    """
    unknown = set(changes) - {"name", *_CONTENT_FIELDS}
    if unknown:
        raise TypeError(f"template_update() got unexpected fields {sorted(unknown)}")
    for field in ("html", "text"):
        if field in changes:
            changes[field] = _blank_to_none(changes[field])
    errors: dict[str, list[str]] = {}
    if "name" in changes and (problem := template_name_problem(changes["name"])):
        errors["name"] = [problem]
    given = {f: changes[f] for f in _CONTENT_FIELDS if f in changes}
    if given:
        syntax, _ = _syntax_problems(given)
        errors.update(syntax)
    if errors:
        raise ValidationError("The template is invalid.", details=errors)

    for _ in range(_UPDATE_ATTEMPTS):
        current = template.current_version
        merged = {f: changes.get(f, getattr(current, f)) for f in _CONTENT_FIELDS}
        if errors := _presence_problems(merged):
            raise ValidationError("The template is invalid.", details=errors)
        content_changed = any(merged[f] != getattr(current, f) for f in _CONTENT_FIELDS)
        variables = _syntax_problems(merged)[1] if content_changed else None
        try:
            with transaction.atomic():
                locked = Template.objects.select_for_update().filter(pk=template.pk, deleted_at__isnull=True).first()
                if locked is None:
                    raise NotFound("Template not found.")
                if locked.current_version_id != current.pk:
                    template = selectors.template_get(subaccount=template.subaccount, template_ref=template.public_id)
                    continue
                fields = ["updated_at"]
                if "name" in changes and changes["name"] != locked.name:
                    if Template.objects.filter(subaccount_id=locked.subaccount_id, name=changes["name"],
                                               deleted_at__isnull=True).exists():
                        raise _duplicate(changes["name"])
                    locked.name = changes["name"]
                    fields.append("name")
                if content_changed:
                    locked.current_version = TemplateVersion.objects.create(
                        template=locked, number=current.number + 1, variables=variables, **merged)
                    fields.append("current_version")
                if len(fields) > 1:  # a PATCH that changes nothing writes nothing
                    locked.save(update_fields=fields)
                    _forget_after_write()
        except IntegrityError as exc:
            raise _duplicate(changes.get("name", template.name)) from exc
        return locked
    raise Conflict("The template is being changed by another request; try again.")


def template_delete(*, template: Template) -> None:
    """Soft delete: gone for the API (404, name reusable), versions kept for email history."""
    now = timezone.now()
    Template.objects.filter(pk=template.pk, deleted_at__isnull=True).update(deleted_at=now, updated_at=now)
    _forget_after_write()


def template_render(*, template: Template, variables: Mapping, version: int | None = None) -> RenderedTemplate:
    """Render a saved version (default: the current one) for preview; nothing is sent."""
    chosen = template.current_version if version is None else \
        selectors.template_version_get(template=template, number=version)
    compiled = rendering.cached_template(template.public_id, chosen.number,
                                         lambda: (chosen.subject, chosen.html, chosen.text))
    return PreparedTemplate(template.public_id, chosen.number, compiled).render(variables)


def forget_send_lookups() -> None:
    with _send_lookups_lock:
        _send_lookups.clear()


def _forget_after_write() -> None:
    # Now, and again after commit: a concurrent send could re-read the old row before it.
    forget_send_lookups()
    transaction.on_commit(forget_send_lookups)


def _send_lookup(subaccount: SubAccount, template_ref: str) -> tuple[str, int, int] | None:
    # Keyed by public ids, which are never reused (primary keys can be, after a rollback).
    key = (subaccount.public_id, template_ref)
    now = time.monotonic()
    hit = _send_lookups.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    found = selectors.template_send_lookup(subaccount=subaccount, template_ref=template_ref)
    if found is not None:  # misses are not kept: a template created a moment later must work
        with _send_lookups_lock:
            if len(_send_lookups) >= _SEND_LOOKUP_MAX_ENTRIES:
                _send_lookups.clear()
            _send_lookups[key] = (now + SEND_LOOKUP_TTL_SECONDS, found)
    return found


def template_prepare_for_send(*, subaccount: SubAccount, template_ref: str) -> PreparedTemplate:
    """Resolve a template id or name to its current compiled version.

    One small query (reused for ``SEND_LOOKUP_TTL_SECONDS`` in this process), then the
    compiled-template cache. A batch may also prepare once and call ``.render(variables)``.
    """
    found = _send_lookup(subaccount, template_ref)
    if found is None:
        raise TemplateNotFound(f"Template {template_ref!r} not found.",
                               details={"template_id": [f"No template with id or name {template_ref!r}."]})
    public_id, number, version_pk = found
    compiled = rendering.cached_template(
        public_id, number, lambda: selectors.template_version_sources(version_pk=version_pk))
    return PreparedTemplate(public_id, number, compiled)


def template_render_for_send(*, subaccount: SubAccount, template_ref: str, variables: Mapping,
                             subject_override: str | None = None) -> RenderedTemplate:
    """Render a sub-account's template (id or name) for an email at accept time.

    Raises ``TemplateNotFound`` (422 ``template_not_found``), ``InvalidVariables`` (422
    ``invalid_variables``, every missing variable named) or ``TemplateRenderError``
    (422 ``validation_error``: a render limit or runtime error).
    """
    if variables is None:
        variables = {}
    if not isinstance(variables, Mapping):
        raise InvalidVariables("variables must be an object.", details={"variables": ["Must be an object."]})
    prepared = template_prepare_for_send(subaccount=subaccount, template_ref=template_ref)
    return prepared.render(variables, subject_override=subject_override)
