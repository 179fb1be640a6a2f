"""Operators' view of templates: read-only content and versions, and a rendered preview.

Content changes go through the API (``templates:write``) so that every change is a version;
the admin shows, previews and (soft-)deletes.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from config.admin_bases import ReadOnlyAdmin
from config.api.errors import ApplicationError
from templates_app import services
from templates_app.models import Template, TemplateVersion
from templates_app.rendering import PreparedTemplate, cached_template


def _excerpt(value: str | None) -> str:
    return Truncator(value).chars(300) if value else "—"


def _preview_link(template: Template, version: TemplateVersion | None = None):
    url = reverse("admin:templates_app_template_preview", args=[template.pk])
    if version is not None:
        url += f"?version={version.number}"
    return format_html('<a href="{}">Preview</a>', url)


class TemplateVersionInline(admin.StackedInline):
    model = TemplateVersion
    extra = 0
    can_delete = False
    ordering = ["-number"]
    fields = ["number", "created_at", "subject", "html_excerpt", "text_excerpt", "variables", "preview"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="HTML (start)")
    def html_excerpt(self, version: TemplateVersion) -> str:
        return _excerpt(version.html)

    @admin.display(description="Text (start)")
    def text_excerpt(self, version: TemplateVersion) -> str:
        return _excerpt(version.text)

    @admin.display(description="Preview")
    def preview(self, version: TemplateVersion):
        return _preview_link(version.template, version)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "subaccount", "version_number", "updated_at", "deleted_at", "preview"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["subaccount", "current_version"]
    search_fields = ["name", "public_id", "subaccount__name", "subaccount__public_id"]
    fields = ["public_id", "name", "subaccount", "version_number", "created_at", "updated_at", "deleted_at",
              "preview"]
    readonly_fields = fields
    inlines = [TemplateVersionInline]
    actions = ["soft_delete"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A hard delete would drop the versions emails refer to; the action soft-deletes.
        return False

    @admin.display(description="Version")
    def version_number(self, template: Template):
        return template.current_version.number if template.current_version else None

    @admin.display(description="Preview")
    def preview(self, template: Template):
        return _preview_link(template) if template.pk else "—"

    @admin.action(description="Delete selected templates (kept for email history)")
    def soft_delete(self, request, queryset):
        for template in queryset:
            services.template_delete(template=template)
        self.message_user(request, f"{queryset.count()} template(s) deleted.", messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:object_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="templates_app_template_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id: int):
        """Render a version with sample variables; the HTML is shown in a sandboxed iframe."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        template = Template.objects.select_related("subaccount", "current_version").filter(pk=object_id).first()
        if template is None or template.current_version is None:
            raise Http404("No such template.")
        version = template.current_version
        if request.GET.get("version", "").isdigit():
            version = template.versions.filter(number=int(request.GET["version"])).first() or version
        sample = {name: f"[{name}]" for name in version.variables}
        raw = request.GET.get("variables")
        rendered, errors = None, []
        try:
            variables = json.loads(raw) if raw else sample
            if not isinstance(variables, dict):
                raise ValueError("Variables must be a JSON object.")
        except ValueError as exc:
            variables, errors = {}, [f"Variables: {exc}"]
        if not errors:
            try:
                compiled = cached_template(template.public_id, version.number,
                                           lambda: (version.subject, version.html, version.text))
                rendered = PreparedTemplate(template.public_id, version.number, compiled).render(variables)
            except ApplicationError as exc:
                errors = [exc.message, *(m for ms in exc.details.values() for m in ms)]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview of {template.name} v{version.number}",
            "template_obj": template,
            "version": version,
            "variables_json": raw or json.dumps(sample, indent=2),
            "rendered": rendered,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/templates_app/template/preview.html", context)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ["template", "number", "subject", "created_at"]
    list_select_related = ["template"]
    search_fields = ["template__name", "template__public_id"]
    fields = ["template", "number", "subject", "html", "text", "variables", "created_at"]
    readonly_fields = fields
