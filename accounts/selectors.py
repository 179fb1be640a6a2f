from django.db.models import QuerySet

from accounts.models import Account, ApiKey, SubAccount
from config.api.errors import NotFound


def subaccount_list(*, account: Account) -> QuerySet[SubAccount]:
    return account.subaccounts.order_by("-created_at", "-id")


def subaccount_get(*, account: Account, subaccount_id: str) -> SubAccount:
    subaccount = account.subaccounts.filter(public_id=subaccount_id).first()
    if subaccount is None:
        raise NotFound("Sub-account not found.")
    return subaccount


def api_key_list(*, account: Account, subaccount: SubAccount | None) -> QuerySet[ApiKey]:
    if subaccount is None:
        return account.api_keys.filter(subaccount__isnull=True, kind="account").order_by("-created_at", "-id")
    return subaccount.api_keys.order_by("-created_at", "-id")


def api_key_get(*, account: Account, subaccount: SubAccount | None, key_id: str) -> ApiKey:
    key = api_key_list(account=account, subaccount=subaccount).filter(public_id=key_id).first()
    if key is None:
        raise NotFound("API key not found.")
    return key
