"""Staff roles for the admin. Superusers do everything; the "support" group looks but never acts.

Acting (actions, edits, deletes) needs a model's change/add/delete permission; the support
group holds only ``view_*`` permissions of Mailroom's own apps, so the admin shows it every
page and no button that changes anything (config/admin_site.py refuses actions without it).
"""

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

SUPPORT_GROUP = "support"
# Mailroom's data; staff users and groups (django.contrib.auth) stay with the superusers.
SUPPORT_APPS = ("accounts", "emails", "templates_app", "domains", "webhooks", "analytics")


@transaction.atomic
def support_group_setup() -> Group:
    """Create or refresh the read-only group: exactly the view permissions, nothing else.

    Idempotent; run again after an upgrade adds models (``manage.py setup_support_group``).
    """
    from django.apps import apps

    for app_label in SUPPORT_APPS:
        # Permissions are made after ``migrate``; make sure they exist when this runs first.
        create_permissions(apps.get_app_config(app_label), verbosity=0)
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=SUPPORT_APPS,
                                                    codename__startswith="view_"))
    return group
