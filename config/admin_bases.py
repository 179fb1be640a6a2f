"""ModelAdmin bases shared by the apps' admin pages."""

from django.contrib import admin

from config.admin_pagination import EstimatedCountPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing only: rows are written by the platform (pipeline, audit, counters), never by a form."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BigTableAdmin(ReadOnlyAdmin):
    """Read-only and large: an estimated row count instead of COUNT(*) on every page."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
