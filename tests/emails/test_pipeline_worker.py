"""The delivery pipeline with real processes: Celery worker (prefork) and beat, gunicorn, Redis,
PostgreSQL and an aiosmtpd sink; crashes and outages made real with signals.

Rows are committed (transactional tests) so the subprocesses, which connect to the pytest test
database, see them. docs/delivery.md describes the guarantees these tests demonstrate.
"""

import os
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from emails.models import DeliveryAttempt, Email
from emails.services import email_claim, email_send_batch, email_sweep
from tests.conftest import assert_error, assert_ok
from tests.emails.worker_harness import (
    Processes,
    RedisServer,
    process_env,
    purge_queues,
    require_redis_server,
)
from tests.factories import seeded_plan

# A short claim lease so a killed worker's rows come back within seconds; still far longer
# than one batch to the local sink takes.
TEST_LEASE_SECONDS = 6
# Tasks lost with the broker's data are published again this soon (default 30 s).
TEST_REPUBLISH_SECONDS = 3


@pytest.fixture
def live_db(transactional_db, requires_postgres, requires_redis):
    return transactional_db


@pytest.fixture
def processes(live_db, smtp_sink, tmp_path):
    """Real processes of one test; every one is killed (whole process group) at teardown,
    before the SMTP sink stops and before the transactional flush, which needs their database
    connections gone."""
    started = Processes(tmp_path)
    yield started
    started.stop_all()
    for process in started.started:  # pytest shows this output only when the test failed
        print(f"----- {process.name} ({process.log.name}) -----\n{process.output(tail=4000)}")
    purge_queues(os.environ["REDIS_URL"])


@pytest.fixture
def pipeline(processes, smtp_sink, tmp_path):
    """``pipeline(**env)``: the subprocess environment on the shared test Redis, queues purged."""
    redis_url = os.environ["REDIS_URL"]
    purge_queues(redis_url)

    def env(**extra):
        return process_env(redis_url=redis_url, smtp_port=smtp_sink.port, var_dir=tmp_path, **extra)

    return env


@pytest.fixture
def unlimited(tenants):
    """Plan quota out of the way for runs of a thousand live emails."""
    account = tenants.a1.account
    account.plan = seeded_plan("enterprise")
    account.save(update_fields=["plan"])
    return tenants.a1


def _message_ids(sink) -> list[str]:
    with sink._lock:
        return [m["message"]["Message-ID"] for m in sink.messages]


def _wait(condition, timeout: float, what: str, interval: float = 0.05, on_tick=None):
    deadline = time.monotonic() + timeout
    while True:
        if on_tick:
            on_tick()
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _items(count: int, tag: str) -> list[dict]:
    return [{"from": "Acme <hello@acme.test>", "to": f"user{i}@example.com", "subject": f"{tag} {i}",
             "text": f"Message {i}", "tags": [tag]} for i in range(count)]


def _accept(subaccount, count: int, tag: str) -> None:
    for start in range(0, count, 500):
        results = email_send_batch(subaccount=subaccount, environment="live",
                                   items=_items(min(500, count - start), tag))
        assert all("id" in r for r in results), [r for r in results if "id" not in r][:3]


@pytest.mark.slow
def test_an_email_sent_through_the_api_is_delivered_by_a_real_worker(tenants, pipeline, processes, send,
                                                                     smtp_sink):
    processes.worker(pipeline())

    data = assert_ok(send(tenants.a1.live_key, to="Ann <ann@example.com>", subject="Welcome",
                          html="<p>Hi</p>", text="Hi"), 201)

    [received] = smtp_sink.wait_for(1, timeout=30)
    email = Email.objects.get(public_id=data["id"])
    assert received["message"]["Message-ID"] == email.message_id
    assert received["message"]["Subject"] == "Welcome"
    assert received["rcpt_tos"] == ["ann@example.com"]
    _wait(lambda: Email.objects.get(pk=email.pk).status == "sent", 10, "the email to be marked sent")
    attempt = DeliveryAttempt.objects.get(email=email)
    assert (attempt.number, attempt.outcome) == (1, "sent")


def _other_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.slow
def test_a_worker_keeps_its_database_connection_from_task_to_task(tenants, pipeline, processes, send, smtp_sink):
    # Celery's Django fixup would close it around every task (CELERY_DB_REUSE_MAX in settings).
    processes.worker(pipeline(), concurrency=1)
    seen = []
    for n in range(1, 7):
        data = assert_ok(send(tenants.a1.live_key, subject=f"Hi {n}"), 201)
        smtp_sink.wait_for(n, timeout=30)
        _wait(lambda data=data: Email.objects.get(public_id=data["id"]).status == "sent", 10, "sent")
        seen.append(_other_backends())
    assert seen[0] and seen[0] & seen[-1]  # the connection of the first task served the sixth


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_only_what_was_in_flight(
        unlimited, pipeline, processes, smtp_sink, settings):
    settings.MAILROOM_SEND_REPUBLISH_AFTER_SECONDS = TEST_REPUBLISH_SECONDS  # the sweeper runs here
    worker = processes.worker(pipeline(MAILROOM_SEND_LEASE_SECONDS=TEST_LEASE_SECONDS))
    total = 1000

    _accept(unlimited.subaccount, total, "crash")  # 20 dispatch tasks published after each commit
    _wait(lambda: len(smtp_sink.messages) >= 250, 60, "the run to get going", interval=0.005)
    worker.kill()  # SIGKILL to the whole group: the main process and its prefork children

    in_flight = set(Email.objects.filter(status="sending").values_list("message_id", flat=True))
    sent_at_kill = Email.objects.filter(status="sent").count()
    assert sent_at_kill < total, "the run finished before the kill; nothing was tested"
    received_at_kill = len(smtp_sink.messages)

    # The new worker keeps the default lease: none of its claims may expire under a slow batch,
    # so every duplicate comes from the kill. The sweeper (beat's task, here called from the
    # test loop) requeues the rows whose lease expired and republishes unclaimed ones.
    processes.worker(pipeline())
    all_ids = set(Email.objects.values_list("message_id", flat=True))
    _wait(lambda: set(_message_ids(smtp_sink)) == all_ids
          and not Email.objects.exclude(status="sent").exists(),
          60, "every email to reach the sink", interval=0.25, on_tick=email_sweep)

    received = Counter(_message_ids(smtp_sink))
    duplicated = {message_id: n for message_id, n in received.items() if n > 1}
    assert set(received) == all_ids and len(all_ids) == total
    assert set(duplicated) <= in_flight, "only emails that were being sent at the kill may repeat"
    assert sum(n - 1 for n in duplicated.values()) <= len(in_flight)
    # Those re-sent were claimed a second time; nothing else was.
    assert set(Email.objects.filter(attempts__gt=1).values_list("message_id", flat=True)) <= in_flight
    print(f"kill after {received_at_kill} received, {sent_at_kill} recorded sent, {len(in_flight)} in flight, "
          f"{sum(n - 1 for n in duplicated.values())} duplicates")


@pytest.mark.slow
def test_a_redis_outage_during_sending_loses_nothing(unlimited, processes, smtp_sink, tmp_path):
    require_redis_server()
    server = RedisServer(processes).start()  # our own: the machine's Redis is shared
    env = process_env(redis_url=server.url, smtp_port=smtp_sink.port, var_dir=tmp_path,
                      MAILROOM_SEND_REPUBLISH_AFTER_SECONDS=TEST_REPUBLISH_SECONDS)
    _, url = processes.web(env)  # the API, with the broker and the cache on that Redis
    processes.worker(env)
    processes.beat(env)  # the real sweeper, every second
    api = requests.Session()
    api.headers["X-Subaccount-ApiKey"] = unlimited.live_key

    response = api.post(f"{url}/api/v1/emails/batch", json={"emails": _items(300, "before")}, timeout=60)
    assert response.status_code == 200 and all("id" in r for r in response.json()["data"]["results"])
    _wait(lambda: len(smtp_sink.messages) >= 30, 60, "sending to get going", interval=0.01)
    server.kill()  # Redis gone in the middle of the run, its queued tasks with it (no persistence)
    down_at = time.monotonic()

    # The API still accepts mail: the row is the outbox, the failed publish is only logged.
    for i in range(10):
        started = time.monotonic()
        response = api.post(f"{url}/api/v1/emails", timeout=30, json={
            "from": "Acme <hello@acme.test>", "to": f"late{i}@example.com", "subject": "during", "text": "x"})
        assert response.status_code == 201, response.text
        assert response.json()["data"]["status"] == "queued"
        assert time.monotonic() - started < 3, "a send must not hang on the broker"
    time.sleep(max(0.0, 3 - (time.monotonic() - down_at)))
    received_while_down = len(smtp_sink.messages)
    server.start()  # same port, empty
    back_at = time.monotonic()

    all_ids = set(Email.objects.values_list("message_id", flat=True))
    assert len(all_ids) == 310 and received_while_down < 310
    _wait(lambda: set(_message_ids(smtp_sink)) >= all_ids and not Email.objects.exclude(status="sent").exists(),
          60, "every email to reach the sink after Redis came back", interval=0.1)
    recovered_in = time.monotonic() - back_at
    # Nothing was in doubt (no worker died, no lease expired): each email arrived exactly once.
    assert sorted(_message_ids(smtp_sink)) == sorted(all_ids)
    # Tasks lost with Redis's data are published again once their publish is this old.
    assert recovered_in < TEST_REPUBLISH_SECONDS + 15, recovered_in


@pytest.mark.slow
def test_a_scheduled_email_goes_out_within_two_seconds_of_its_time(tenants, pipeline, processes, send,
                                                                   smtp_sink):
    env = pipeline()
    processes.worker(env)
    processes.beat(env)  # emails-sweep (twice a second) releases due scheduled mail
    base = timezone.now() + timedelta(seconds=3)
    # Spread over a second and a half so the releases fall at different points of beat's tick.
    due: dict[str, datetime] = {}
    for i in range(6):
        scheduled_at = base + timedelta(milliseconds=300 * i)
        data = assert_ok(send(tenants.a1.live_key, to=f"s{i}@example.com", scheduled_at=scheduled_at.isoformat()),
                         201)
        assert data["status"] == "scheduled"
        due[Email.objects.get(public_id=data["id"]).message_id] = scheduled_at

    seen: dict[str, datetime] = {}

    def all_seen():
        now = timezone.now()
        for message_id in _message_ids(smtp_sink):
            seen.setdefault(message_id, now)
        return len(seen) == len(due)

    _wait(all_seen, 30, "the scheduled emails", interval=0.01)
    late = {message_id: (seen[message_id] - scheduled_at).total_seconds() for message_id, scheduled_at in due.items()}
    assert all(0 <= seconds <= 2 for seconds in late.values()), late


def _threads(count: int, target) -> list:
    """Run ``target(i)`` in ``count`` threads released together; returns the results (or raises)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(i):
        try:
            barrier.wait(10)
            results[i] = target(i)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_requests_with_one_idempotency_key_make_one_email(live_db, tenants, send, outbox_tasks):
    for round_number in range(8):
        key = f"order-{round_number}"
        responses = _threads(3, lambda i, key=key: send(tenants.a1.live_key, to="ann@example.com",
                                                         http_headers={"HTTP_IDEMPOTENCY_KEY": key}))
        assert Email.objects.filter(subaccount=tenants.a1.subaccount).count() == round_number + 1
        created = [r for r in responses if r.status_code == 201 and r.json()["data"]["replayed"] is False]
        assert len(created) == 1, [r.content for r in responses]
        email_id = assert_ok(created[0], 201)["id"]
        for response in responses:
            if response is created[0]:
                continue
            if response.status_code == 201:  # the first one had finished: a replay of it
                assert response["X-Idempotent-Replay"] == "true"
                assert assert_ok(response, 201)["id"] == email_id
            else:  # still in progress when this one arrived
                assert_error(response, 409, "idempotency_conflict")


def test_concurrent_claims_never_take_the_same_row_twice(live_db, tenants, outbox_tasks):
    _accept(tenants.a1.subaccount, 400, "claim")
    ids = list(Email.objects.values_list("pk", flat=True))

    def claim_until_empty(i):
        mine = []
        # Half the threads name the same ids (a redelivered task), half take whatever is due.
        while batch := email_claim(ids=ids[:100] if i % 2 else None, limit=20):
            mine.extend(batch)
        return mine

    claimed = [pk for batch in _threads(4, claim_until_empty) for pk in batch]
    assert len(claimed) == len(set(claimed)) == 400
    assert set(Email.objects.values_list("status", "attempts")) == {("sending", 1)}
