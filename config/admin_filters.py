"""List filters shared by the apps' admins."""

from django.contrib import admin

from accounts.models import Account


class AccountFilter(admin.SimpleListFilter):
    """Filter by account, listed by name. Past ``LIMIT`` accounts the list is cut: search by the
    account's "acc_..." id instead. ``account_path`` is the lookup from the listed model."""

    title = "account"
    parameter_name = "account"
    LIMIT = 100
    account_path = "account"

    def lookups(self, request, model_admin):
        return list(Account.objects.order_by("name", "id").values_list("public_id", "name")[:self.LIMIT])

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.account_path}__public_id": self.value()})
        return queryset


class SubaccountAccountFilter(AccountFilter):
    account_path = "subaccount__account"
