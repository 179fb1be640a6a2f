"""Concurrent event recording on real PostgreSQL: no increment is lost, no deadlock."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from analytics.services import rollups_rebuild
from emails.services.events import NewEvent, email_event_record, email_events_record
from tests.analytics.conftest import at, counters, make_email

THREADS = 8
EVENTS_PER_THREAD = 40


def _run_in_threads(work) -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_events_lose_no_increment(tenants, requires_postgres):
    emails = [make_email(tenants.a1, tags=["hot"]) for _ in range(THREADS)]

    def work(index: int) -> None:
        for n in range(EVENTS_PER_THREAD):
            # every thread hits the same day, tag and domain rows
            email_event_record(email=emails[index], type="opened", recipient="user@example.com",
                               data={"unique": n == 0, "machine": False},
                               timestamp=at("2026-03-01 12:00") + timedelta(seconds=n))

    _run_in_threads(work)
    total = THREADS * EVENTS_PER_THREAD
    expected = {"opened": total, "unique_opened": THREADS}
    assert counters(tenants.a1, day="2026-03-01") == expected
    assert counters(tenants.a1, day="2026-03-01", dimension="tag", value="hot") == expected
    assert counters(tenants.a1, day="2026-03-01", dimension="domain", value="acme.test") == expected
    assert rollups_rebuild(check_only=True).differences == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_neither_lose_increments_nor_deadlock(tenants, requires_postgres):
    # Emails whose tags overlap, recorded in batches listed in opposite orders by alternate
    # threads: without the key ordering, two transactions would lock the shared rows in
    # opposite orders and deadlock.
    emails = [make_email(tenants.a1, tags=[f"t{i}", "shared"], domain=f"d{i % 2}.test") for i in range(4)]
    emails += [make_email(tenants.a2, tags=["shared"])]
    days = [at("2026-03-01 23:59:59"), at("2026-03-02 00:00:00")]

    def work(index: int) -> None:
        batch = [NewEvent(email=email, type="delivered", recipient="user@example.com", timestamp=day)
                 for email in emails for day in days]
        if index % 2:
            batch.reverse()
        for _ in range(EVENTS_PER_THREAD // 4):
            email_events_record(batch)

    _run_in_threads(work)
    rounds = THREADS * (EVENTS_PER_THREAD // 4)
    for day in ("2026-03-01", "2026-03-02"):
        assert counters(tenants.a1, day=day) == {"delivered": 4 * rounds}
        assert counters(tenants.a1, day=day, dimension="tag", value="shared") == {"delivered": 4 * rounds}
        assert counters(tenants.a1, day=day, dimension="tag", value="t3") == {"delivered": rounds}
        assert counters(tenants.a1, day=day, dimension="domain", value="d0.test") == {"delivered": 2 * rounds}
        assert counters(tenants.a2, day=day, dimension="tag", value="shared") == {"delivered": rounds}
    assert rollups_rebuild(check_only=True).differences == []
