"""The operators' admin site: audit log for every model admin, dashboard index, login throttle.

``config.admin_apps.MailroomAdminConfig`` replaces ``django.contrib.admin`` in INSTALLED_APPS, so
``admin.site`` (and every ``@admin.register``) is a ``MailroomAdminSite``:

- every registered ``ModelAdmin`` gets ``AuditedModelAdmin`` mixed in at registration, so no
  app has to remember it: actions, form saves and deletions land in ``accounts.AuditLog``;
- an action that declares no permission needs the model's *change* permission, so the
  read-only "support" group (accounts/staff.py) sees no action and any it posts is refused;
- the index shows the operations dashboard (config/dashboard.py);
- failed logins are limited per address and per username (429 page).
"""

import functools

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import models
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

from accounts.audit import audit_outcomes_take, audit_record, audit_record_many
from accounts.throttling import cache_usage

# An action loads its selection to audit it: "select all" across a million emails is refused.
ACTION_LIMIT = 1000
LOGIN_THROTTLE_GROUPS = (("admin-login-ip", "ip"), ("admin-login-user", "username"))


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _heavy_fields(model) -> list[str]:
    """Columns an audit snapshot does not need (bodies, JSON, blobs); ``__str__`` rarely reads them."""
    return [f.name for f in model._meta.concrete_fields
            if isinstance(f, models.TextField | models.JSONField | models.BinaryField) and not f.primary_key]


class AuditedModelAdmin:
    """Mixed into every ModelAdmin on the Mailroom site (see ``MailroomAdminSite.register``)."""

    def has_act_permission(self, request) -> bool:
        """Running an action: the user's change permission on the model, whatever the admin's own
        ``has_change_permission`` says (read-only admins such as emails still have actions)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    def get_actions(self, request):
        actions = super().get_actions(request)
        may_act = self.has_act_permission(request)
        return {name: (self._audited_action(func, name), name, description)
                for name, (func, description_name, description) in actions.items()
                if may_act or getattr(func, "allowed_permissions", None)}

    def action_checkbox(self, obj):
        # Django renders a CheckboxInput widget template per row (a third of a 100-row list
        # page's time); the same markup from one format_html.
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, obj.pk,
                           format_html(gettext("Select this object for an action - {}"), str(obj)))

    def changelist_view(self, request, extra_context=None):
        # Django ignores a posted action the user may not run (the list just renders again);
        # refuse it outright so a read-only user learns it was not done.
        if request.method == "POST":
            posted = {name for name in request.POST.getlist("action") if name}
            if posted - set(self.get_actions(request)):
                raise PermissionDenied("You may not run this action.")
        return super().changelist_view(request, extra_context)

    def _audited_action(self, func, name: str):
        if name == "delete_selected":
            return func  # audited by log_deletions, once the operator has confirmed
        action = f"{self.opts.label_lower}.{name}"

        @functools.wraps(func)
        def run(modeladmin, request, queryset):
            targets = list(queryset.defer(*_heavy_fields(queryset.model))[:ACTION_LIMIT + 1])
            if len(targets) > ACTION_LIMIT:
                modeladmin.message_user(request, f"Select at most {ACTION_LIMIT} rows for an action; nothing "
                                                 "was changed.", messages.ERROR)
                return None
            try:
                response = func(modeladmin, request, queryset)
            except Exception as exc:
                self._audit_action(request, action, targets, failure=f"error: {type(exc).__name__}: {exc}")
                raise
            # An action that answers with a page (a form, a confirmation) has not acted yet.
            if response is None or 300 <= response.status_code < 400:
                self._audit_action(request, action, targets)
            else:
                audit_outcomes_take(request)
            return response

        return run

    def _audit_action(self, request, action: str, targets: list, failure: str | None = None) -> None:
        outcomes = audit_outcomes_take(request)
        audit_record_many(actor=request.user, action=action, targets=targets, ip=client_ip(request),
                          details_of=lambda t: {"outcome": failure or outcomes.get(str(t.pk), "done")})

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        audit_record(actor=request.user, action=f"{self.opts.label_lower}.add", target=obj,
                     details={"changes": message}, ip=client_ip(request))
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        audit_record(actor=request.user, action=f"{self.opts.label_lower}.change", target=obj,
                     details={"changes": message}, ip=client_ip(request))
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        entries = super().log_deletions(request, objects)
        audit_record_many(actor=request.user, action=f"{self.opts.label_lower}.delete", targets=objects,
                          ip=client_ip(request))
        return entries


def _throttle_key(kind: str):
    if kind == "ip":
        return lambda group, request: client_ip(request) or "unknown"
    return lambda group, request: request.POST.get("username", "").strip().lower()


def _login_usages(request, *, increment: bool) -> list[dict]:
    usages = (cache_usage(request, group=group, key=_throttle_key(kind), rate=settings.MAILROOM_ADMIN_LOGIN_RATE,
                          method="POST", increment=increment) for group, kind in LOGIN_THROTTLE_GROUPS)
    return [usage for usage in usages if usage]


class MailroomAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Mailroom operations")
    site_title = gettext_lazy("Mailroom admin")
    index_title = gettext_lazy("Operations")
    index_template = "admin/mailroom/index.html"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedModelAdmin):
            admin_class = type(admin_class.__name__, (AuditedModelAdmin, admin_class),
                               {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__})
        return super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        from config.dashboard import operations_overview

        context = {}
        if request.user.has_perm("emails.view_email"):
            context["operations"] = operations_overview()
        return super().index(request, {**context, **(extra_context or {})})

    def login(self, request, extra_context=None):
        """Failed logins are counted per client address and per username; past the rate
        (``MAILROOM_ADMIN_LOGIN_RATE``, 10 a minute) every POST gets 429 until the window ends,
        even with the right password, so guessing learns nothing."""
        if request.method != "POST":
            return super().login(request, extra_context)
        exhausted = [u for u in _login_usages(request, increment=False) if u["count"] >= u["limit"]]
        if exhausted:
            wait = max(max(u["time_left"] for u in exhausted), 1)
            response = TemplateResponse(request, "admin/mailroom/login_ratelimited.html",
                                        {**self.each_context(request), "title": "Too many attempts",
                                         "retry_after": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
        response = super().login(request, extra_context)
        if not 300 <= response.status_code < 400:  # the form came back: a failed attempt
            _login_usages(request, increment=True)
        return response

