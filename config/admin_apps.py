from django.contrib.admin.apps import AdminConfig


class MailroomAdminConfig(AdminConfig):
    """django.contrib.admin, whose default site is Mailroom's (config/admin_site.py). Kept apart from
    the site's module, which imports models: app configs load before models can."""

    default_site = "config.admin_site.MailroomAdminSite"
