import factory

from accounts import services
from accounts.models import Account, Plan, SubAccount


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    contact_email = factory.Sequence(lambda n: f"owner{n}@example.com")
    plan = factory.LazyFunction(lambda: Plan.objects.get(code="free"))


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
