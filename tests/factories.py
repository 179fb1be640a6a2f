import importlib

import factory
from django.apps import apps

from accounts import services
from accounts.models import Account, Plan, SubAccount


def seeded_plan(code: str = "free") -> Plan:
    """A seeded plan. A transactional test flushes every table when it ends, the plans the
    data migration wrote included, so later tests seed them again the same way."""
    found = Plan.objects.filter(code=code).first()
    if found is None:
        importlib.import_module("accounts.migrations.0002_seed_plans").seed(apps, None)
        found = Plan.objects.get(code=code)
    return found


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    contact_email = factory.Sequence(lambda n: f"owner{n}@example.com")
    plan = factory.LazyFunction(seeded_plan)


class SubAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubAccount

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Sub-account {n}")


def make_key(*, account, subaccount=None, kind="live", scopes=None, rate_limit=None) -> str:
    """Create an API key and return the raw secret."""
    _, raw = services.api_key_create(account=account, subaccount=subaccount, kind=kind, scopes=scopes,
                                     rate_limit=rate_limit, operator=True)
    return raw
