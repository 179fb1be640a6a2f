"""Counters spread over shard rows still add up, in queries and in the rebuild check."""

from datetime import timedelta

from django.utils import timezone

from analytics.models import DailyCounter
from analytics.services import rollups_rebuild
from tests.analytics.conftest import counters, make_email, record
from tests.conftest import assert_ok


def test_shards_are_summed_by_queries_and_the_rebuild(settings, api, tenants):
    settings.MAILROOM_ANALYTICS_SHARDS = 4
    now = timezone.now().replace(hour=12)
    for _ in range(40):
        record(make_email(tenants.a1), "sent", now)
    assert DailyCounter.objects.filter(dimension="all").count() > 1  # 40 draws of 4 shards
    assert counters(tenants.a1, day=now.date().isoformat())["sent"] == 40
    day = now.date().isoformat()
    data = assert_ok(api(tenants.a1.live_key).get(
        f"/api/v1/analytics/emails?from_date={day}&to_date={(now + timedelta(days=1)).date().isoformat()}"))
    assert data["total"]["sent"] == 40
    report = rollups_rebuild(check_only=True)
    assert report.differences == []
