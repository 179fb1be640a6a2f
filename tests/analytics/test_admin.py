"""The admin volume dashboard (inline SVG) and the read-only counter admin."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model

from analytics.charts import volume_chart
from analytics.models import DailyCounter
from analytics.selectors import utc_today
from tests.analytics.conftest import make_email, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-1")
    client.force_login(user)
    return client


@pytest.fixture
def traffic(tenants):
    noon = datetime.combine(utc_today(), time(12), tzinfo=UTC)
    for tenant, sent in ((tenants.a1, 3), (tenants.b1, 1)):
        for n in range(sent):
            email = make_email(tenant)
            record(email, "sent", noon - timedelta(days=n))
            record(email, "delivered", noon - timedelta(days=n))
    record(make_email(tenants.b1), "bounced", noon)
    return tenants


def test_the_admin_index_links_to_the_dashboard(operator):
    page = operator.get("/admin/").content.decode()
    assert 'href="/admin/analytics/dashboard/"' in page
    assert "Volume dashboard" in page


def test_the_dashboard_draws_platform_and_account_volume_as_inline_svg(operator, traffic):
    response = operator.get("/admin/analytics/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script" not in page.split('id="content-main"')[1]
    assert page.count("class=\"volume-chart\"") == 3  # the platform chart and one small chart per busy account
    assert f"{utc_today().isoformat()} sent: 2" in page  # a1 and b1 sent one each today
    assert "<b>Sent</b>4" in page and "<b>Bounced</b>1" in page
    assert page.index("Account A") < page.index("Account B")  # busiest first

    account = operator.get(f"/admin/analytics/dashboard/?account={traffic.b1.account.public_id}&days=7")
    assert account.status_code == 200
    assert "Account: Account B" in account.content.decode()


def test_the_dashboard_ignores_bad_parameters(operator, traffic):
    response = operator.get("/admin/analytics/dashboard/?days=abc&environment=prod&account=nope")
    assert response.status_code == 200
    assert response.context["days"] == 30 and response.context["environment"] == "live"


def test_staff_without_permission_cannot_see_the_dashboard(client, db):
    user = get_user_model().objects.create_user("staff", "s@example.com", "a-long-password-1", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/analytics/dashboard/").status_code == 403


def test_counters_are_read_only_in_the_admin(operator, traffic):
    row = DailyCounter.objects.filter(dimension="all").first()
    assert operator.get("/admin/analytics/dailycounter/").status_code == 200
    detail = operator.get(f"/admin/analytics/dailycounter/{row.pk}/change/")
    assert detail.status_code == 200
    assert b'name="sent"' not in detail.content
    assert operator.post(f"/admin/analytics/dailycounter/{row.pk}/change/", {"sent": 99}).status_code == 403
    assert operator.get("/admin/analytics/dailycounter/add/").status_code == 403
    assert operator.get(f"/admin/analytics/dailycounter/{row.pk}/delete/").status_code == 403


def test_the_chart_escapes_its_labels_and_scales_to_a_round_maximum():
    svg = volume_chart([{"date": "<b>", "sent": 7, "delivered": 3, "bounced": 0},
                        {"date": "2026-03-02", "sent": 0, "delivered": 0, "bounced": 0}])
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert ">10</text>" in svg  # 7 rounds up to 10
