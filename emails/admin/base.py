"""Shared pieces of the emails app's admin pages."""

from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from config.admin_bases import BigTableAdmin, ReadOnlyAdmin  # noqa: F401 - used by the emails admin modules


def link_to_email(email_id: int, label: str):
    return format_html('<a href="{}">{}</a>', reverse("admin:emails_email_change", args=[email_id]), label)


def short(value, length: int = 80) -> str:
    return Truncator(value or "").chars(length)


def id_search(queryset, term: str, *, email_path: str | None = "email", subaccount_path: str | None = None):
    """Exact searches on indexed columns shared by the email-related lists; None: not an id."""
    if term.startswith("msg_") and email_path is not None:
        return queryset.filter(**{f"{email_path}__public_id" if email_path else "public_id": term})
    if term.startswith("sub_") and subaccount_path is not None:
        return queryset.filter(**{f"{subaccount_path}__public_id": term})
    return None
