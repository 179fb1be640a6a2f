"""Reads of templates, always starting from the sub-account."""

from django.db.models import Q, QuerySet

from accounts.models import SubAccount
from config.api.errors import NotFound
from templates_app.models import Template, TemplateVersion

PUBLIC_ID_PREFIX = "tpl_"


def _ref_filter(template_ref: str) -> Q:
    # Names may not start with "tpl_" (services.template_name_problem), so a ref is one or the other.
    if template_ref.startswith(PUBLIC_ID_PREFIX):
        return Q(public_id=template_ref)
    return Q(name=template_ref)


def template_list(*, subaccount: SubAccount) -> QuerySet[Template]:
    return (subaccount.templates.filter(deleted_at__isnull=True)
            .select_related("current_version")
            .defer("current_version__html", "current_version__text")
            .order_by("-created_at", "-id"))


def template_find(*, subaccount: SubAccount, template_ref: str) -> Template | None:
    if not isinstance(template_ref, str) or not template_ref or len(template_ref) > 100:
        return None
    return (subaccount.templates.filter(_ref_filter(template_ref), deleted_at__isnull=True)
            .select_related("current_version").first())


def template_get(*, subaccount: SubAccount, template_ref: str) -> Template:
    template = template_find(subaccount=subaccount, template_ref=template_ref)
    if template is None:
        raise NotFound("Template not found.")
    return template


def template_send_lookup(*, subaccount: SubAccount, template_ref: str) -> tuple[str, int, int] | None:
    """(public id, current version number, current version pk) in one small query.

    The sending path needs only these to find the compiled template in the process cache;
    the version's bodies (up to 512 KB each) are loaded only on a cache miss.
    """
    if not isinstance(template_ref, str) or not template_ref or len(template_ref) > 100:
        return None
    return (subaccount.templates.filter(_ref_filter(template_ref), deleted_at__isnull=True,
                                        current_version__isnull=False)
            .values_list("public_id", "current_version__number", "current_version_id").first())


def template_version_list(*, template: Template) -> QuerySet[TemplateVersion]:
    return template.versions.order_by("-number")


def template_version_get(*, template: Template, number: int) -> TemplateVersion:
    version = template.versions.filter(number=number).first()
    if version is None:
        raise NotFound(f"Template version {number} not found.")
    return version


def template_version_sources(*, version_pk: int) -> tuple[str, str | None, str | None]:
    return TemplateVersion.objects.values_list("subject", "html", "text").get(pk=version_pk)
