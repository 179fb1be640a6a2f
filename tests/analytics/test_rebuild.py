"""analytics_rebuild: the live counters match a recount from the events; drift is found and repaired."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.models import DailyCounter
from tests.analytics.conftest import at, counters, make_email, record

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("analytics_rebuild", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(tenants):
    for tenant, tags in ((tenants.a1, ["a", "b"]), (tenants.a2, []), (tenants.b1, ["a"])):
        email = make_email(tenant, tags=tags)
        record(email, "queued", at("2026-03-01 23:59"))
        record(email, "sent", at("2026-03-02 00:00"))
        record(email, "delivered", at("2026-03-02 00:01"))
        record(email, "opened", at("2026-03-03 08:00"), unique=True, machine=False)
        record(email, "opened", at("2026-03-03 08:01"), unique=False, machine=True)
        record(email, "bounced", at("2026-03-03 09:00"), bounce_type="soft")
        record(email, "scheduled", at("2026-03-03 09:00"), rescheduled=True)
    record(make_email(tenants.a1, environment="test"), "clicked", at("2026-03-01 00:00"), unique=False)
    return tenants


def test_the_live_counters_match_a_recount_from_the_events(history):
    before = list(DailyCounter.objects.order_by("pk").values())
    output = run("--check")
    assert "Counted 22 events into" in output
    assert "No differences" in output
    assert list(DailyCounter.objects.order_by("pk").values()) == before


def test_it_reports_drift_and_repairs_it_idempotently(history):
    DailyCounter.objects.filter(subaccount=history.a1.subaccount, day="2026-03-02", dimension="all").update(sent=7)
    DailyCounter.objects.filter(subaccount=history.b1.subaccount, dimension="tag").delete()
    DailyCounter.objects.create(subaccount=history.a2.subaccount, account=history.a2.account, day="2026-01-01",
                                environment="live", dimension="all", failed=3)

    with pytest.raises(CommandError, match="counters differ") as raised:
        run("--check")
    assert raised.value.returncode == 1
    output = run()
    assert f"subaccount={history.a1.subaccount.pk} day=2026-03-02 env=live all sent: stored 7, events say 1" \
        in output
    assert "rewritten from the events" in output
    assert counters(history.a1, day="2026-03-02") == {"sent": 1, "delivered": 1}
    assert counters(history.b1, day="2026-03-03", dimension="tag", value="a") == {
        "opened": 1, "unique_opened": 1, "machine_opened": 1, "soft_bounced": 1}
    assert counters(history.a2, day="2026-01-01") == {}
    assert "No differences" in run()
    assert "No differences" in run("--check")


def test_it_can_limit_itself_to_one_subaccount(history):
    DailyCounter.objects.filter(subaccount=history.a1.subaccount).update(sent=9)
    DailyCounter.objects.filter(subaccount=history.a2.subaccount).update(sent=9)
    run("--subaccount", history.a1.subaccount.public_id)
    assert counters(history.a1, day="2026-03-02")["sent"] == 1
    assert counters(history.a2, day="2026-03-02")["sent"] == 9
    with pytest.raises(CommandError, match="No sub-account sub_nope"):
        run("--subaccount", "sub_nope")
