"""Writes for accounts, sub-accounts and API keys."""

from django.db import transaction
from django.utils import timezone

from accounts import principals
from accounts.keys import DISPLAY_PREFIX_LENGTH, key_digest, key_generate
from accounts.models import Account, ApiKey, KeyKind, Plan, Scope, SubAccount, TenantStatus
from config.api.errors import AuthorizationError, Conflict, ValidationError

ALL_SCOPES = [s.value for s in Scope]


def account_create(*, name: str, plan_code: str = "free", contact_email: str = "") -> Account:
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise ValidationError(f"Unknown plan {plan_code!r}.", details={"plan": ["Unknown plan."]})
    return Account.objects.create(name=name, plan=plan, contact_email=contact_email)


def _set_status(obj: Account | SubAccount, *, status: str, reason: str) -> None:
    obj.status = status
    obj.suspended_reason = reason if status == TenantStatus.SUSPENDED else ""
    obj.save(update_fields=["status", "suspended_reason", "updated_at"])


def account_suspend(*, account: Account, reason: str = "") -> Account:
    _set_status(account, status=TenantStatus.SUSPENDED, reason=reason)
    principals.forget_account(account.pk)
    return account


def account_resume(*, account: Account) -> Account:
    _set_status(account, status=TenantStatus.ACTIVE, reason="")
    principals.forget_account(account.pk)
    return account


def subaccount_create(*, account: Account, name: str, track_opens: bool = False,
                      track_clicks: bool = False) -> SubAccount:
    if account.subaccounts.filter(name=name).exists():
        raise Conflict(f"A sub-account named {name!r} already exists.", details={"name": ["Already exists."]})
    return SubAccount.objects.create(account=account, name=name, track_opens=track_opens,
                                     track_clicks=track_clicks)


def subaccount_update(*, subaccount: SubAccount, **fields) -> SubAccount:
    if "name" in fields and fields["name"] != subaccount.name and \
            subaccount.account.subaccounts.filter(name=fields["name"]).exists():
        raise Conflict(f"A sub-account named {fields['name']!r} already exists.",
                       details={"name": ["Already exists."]})
    for name, value in fields.items():
        setattr(subaccount, name, value)
    subaccount.save(update_fields=[*fields.keys(), "updated_at"])
    # Cached principals hold the sub-account (its tracking defaults): drop them here at once.
    principals.forget_account(subaccount.account_id)
    return subaccount


def subaccount_suspend(*, subaccount: SubAccount, reason: str = "") -> SubAccount:
    _set_status(subaccount, status=TenantStatus.SUSPENDED, reason=reason)
    principals.forget_account(subaccount.account_id)
    return subaccount


def subaccount_resume(*, subaccount: SubAccount) -> SubAccount:
    _set_status(subaccount, status=TenantStatus.ACTIVE, reason="")
    principals.forget_account(subaccount.account_id)
    return subaccount


@transaction.atomic
def subaccount_delete(*, subaccount: SubAccount) -> None:
    account_id = subaccount.account_id
    subaccount.delete()
    principals.forget_account(account_id)


def api_key_create(*, account: Account, kind: str, subaccount: SubAccount | None = None, name: str = "",
                   scopes: list[str] | None = None, rate_limit: int | None = None,
                   granted_by=None, operator: bool = False) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored or shown again.

    ``granted_by`` is the sub-account key creating this one: it may only grant scopes it has
    (omitted scopes mean "the same as mine"), and a test key may only create test keys, so a
    leaked test key can never mint one that delivers real mail.
    A tenant may not set a rate limit above the plan; an operator (``operator=True``) may.
    """
    if kind == KeyKind.ACCOUNT:
        scopes = []
        subaccount = None
    else:
        if not scopes:
            scopes = list(granted_by.scopes) if granted_by is not None else [Scope.FULL_ACCESS.value]
        scopes = sorted(set(scopes))
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise ValidationError(details={"scopes": [f"Unknown scope {s!r}." for s in unknown]})
        if granted_by is not None and granted_by.kind == KeyKind.TEST and kind != KeyKind.TEST:
            raise AuthorizationError("A test key can only create test keys.")
        if granted_by is not None and not all(granted_by.has_scope(s) for s in scopes):
            raise AuthorizationError("A key can only grant scopes it has itself.")
    if rate_limit is not None and not operator and rate_limit > account.plan.requests_per_minute:
        raise ValidationError(details={"rate_limit": [
            f"Must be at most the plan's {account.plan.requests_per_minute} requests per minute."]})
    raw = key_generate(kind)
    key = ApiKey.objects.create(
        account=account, subaccount=subaccount, kind=kind, name=name, scopes=scopes,
        rate_limit=rate_limit, prefix=raw[:DISPLAY_PREFIX_LENGTH], digest=key_digest(raw),
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    principals.forget_digest(key.digest)
    return key


@transaction.atomic
def account_bootstrap(*, name: str, plan_code: str = "free", contact_email: str = "",
                      rate_limit: int | None = None) -> dict[str, str]:
    """Operator one-liner: an account, its key, a default sub-account and live + test keys."""
    account = account_create(name=name, plan_code=plan_code, contact_email=contact_email)
    subaccount = subaccount_create(account=account, name="default")
    _, account_key = api_key_create(account=account, kind=KeyKind.ACCOUNT, name="bootstrap",
                                    rate_limit=rate_limit, operator=True)
    _, live_key = api_key_create(account=account, subaccount=subaccount, kind=KeyKind.LIVE,
                                 name="bootstrap live", rate_limit=rate_limit, operator=True)
    _, test_key = api_key_create(account=account, subaccount=subaccount, kind=KeyKind.TEST,
                                 name="bootstrap test", rate_limit=rate_limit, operator=True)
    return {
        "account_id": account.public_id,
        "account_api_key": account_key,
        "subaccount_id": subaccount.public_id,
        "subaccount_api_key": live_key,
        "test_api_key": test_key,
    }
