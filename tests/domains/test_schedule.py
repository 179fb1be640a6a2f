"""Periodic re-verification: when each domain is next due, the beat sweep, the thin tasks."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from domains import services, tasks
from domains.models import Domain
from domains.schedule import SCHEDULE


def test_the_sweep_is_in_the_beat_schedule_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["domains-recheck-due"]
    assert entry == SCHEDULE["domains-recheck-due"]
    assert entry["task"] == tasks.domains_recheck_due.name
    assert entry["options"]["expires"] < entry["schedule"]


def test_a_new_domain_is_rechecked_every_15_minutes_for_72_hours(add_domain, tenants, dns_server):
    add_domain(tenants.a1, "example.com")
    domain = Domain.objects.get()
    assert domain.next_check_at - domain.created_at == pytest.approx(timedelta(minutes=15), abs=timedelta(seconds=5))
    assert domain.recheck_until - domain.created_at == pytest.approx(timedelta(hours=72), abs=timedelta(seconds=5))
    domain = services.domain_verify(domain=domain, on_demand=False)
    assert domain.status == "failed"
    assert domain.next_check_at - domain.last_checked_at == timedelta(minutes=15)
    # After the window it is only checked on demand...
    Domain.objects.update(recheck_until=timezone.now() - timedelta(minutes=1))
    domain = services.domain_verify(domain=domain, on_demand=False)
    assert domain.next_check_at is None
    # ...and asking again starts a new window.
    domain = services.domain_verify(domain=domain, on_demand=True)
    assert domain.next_check_at - domain.last_checked_at == timedelta(minutes=15)
    assert domain.recheck_until - domain.last_checked_at == timedelta(hours=72)


def test_a_verified_domain_is_rechecked_daily(add_domain, tenants, dns_server):
    dns_server.publish(add_domain(tenants.a1, "example.com")["dns_records"])
    domain = services.domain_verify(domain=Domain.objects.get())
    assert domain.next_check_at - domain.last_checked_at == timedelta(hours=24)


def test_the_sweep_claims_due_domains_once(add_domain, tenants):
    add_domain(tenants.a1, "due.example")
    add_domain(tenants.a1, "later.example")
    now = timezone.now()
    Domain.objects.filter(name="due.example").update(next_check_at=now - timedelta(seconds=1))
    Domain.objects.filter(name="later.example").update(next_check_at=now + timedelta(minutes=5))
    due = Domain.objects.get(name="due.example")
    assert services.domains_claim_due(now=now) == [due.pk]
    assert services.domains_claim_due(now=now) == []  # leased: not enqueued twice
    due.refresh_from_db()
    assert due.next_check_at == now + services.CLAIM_LEASE


def test_the_beat_task_enqueues_a_check_per_due_domain(add_domain, tenants, monkeypatch):
    add_domain(tenants.a1, "one.example")
    add_domain(tenants.a1, "two.example")
    Domain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    enqueued = []
    monkeypatch.setattr(tasks.domain_recheck, "delay", enqueued.append)
    assert tasks.domains_recheck_due.run() == 2
    assert sorted(enqueued) == sorted(Domain.objects.values_list("pk", flat=True))


def test_the_check_task_verifies_a_domain_whose_records_appeared(add_domain, tenants, dns_server,
                                                               published_events):
    data = add_domain(tenants.a1, "example.com")
    dns_server.publish(data["dns_records"])
    domain = Domain.objects.get()
    tasks.domain_recheck.run(domain.pk)
    domain.refresh_from_db()
    assert domain.status == "verified"
    assert [e["event_type"] for e in published_events] == ["domain.verified"]
    tasks.domain_recheck.run(domain.pk + 1000)  # deleted meanwhile: nothing to do
