"""End to end with a real Celery worker process on real Redis and PostgreSQL, and the
claim rules under real concurrency."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import deliver_due, make_endpoint
from webhooks import delivery
from webhooks.models import WebhookAttempt, WebhookEvent
from webhooks.services import webhook_events_publish

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_db(transactional_db, requires_postgres):
    return transactional_db


@pytest.fixture
def worker(live_db, requires_redis, allow_private):
    """``celery -A config worker`` in its own process, on the test database and our Redis db."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "MAILROOM_TESTING": "true",
        "DJANGO_SECRET_KEY": "test-worker",
        "MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("@", f":{db['PASSWORD']}@", 1)
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    subprocess.run([*celery, "purge", "-f"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    process = subprocess.Popen(
        [*celery, "worker", "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def read():  # keeps the pipe drained and notices "celery@host ready."
        for line in process.stdout:
            output.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "".join(output)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(3)  # a warm shutdown would wait for slow requests in flight
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def receivers(allow_private):
    started: list[Receiver] = []

    def make() -> Receiver:
        started.append(Receiver().start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


@pytest.mark.slow
def test_an_event_published_in_a_transaction_is_delivered_by_the_worker_after_commit(tenants, worker, receivers):
    receiver = receivers()
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)

    with transaction.atomic():
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.delivered",
                               data={"email_id": "msg_1"})
        time.sleep(0.5)
        assert receiver.requests == []  # nothing leaves before the commit

    [request] = receiver.wait_for(1, timeout=20)
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["data"] == {"email_id": "msg_1"}
    event = WebhookEvent.objects.get()
    deadline = time.monotonic() + 10
    while event.status != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.1)
        event.refresh_from_db()
    assert event.status == "succeeded"


@pytest.mark.slow
def test_the_sweeper_sends_due_retries_through_the_worker(tenants, worker, receivers):
    receiver = receivers()
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    receiver.respond(500)
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    receiver.wait_for(1, timeout=20)
    event = WebhookEvent.objects.get(endpoint=endpoint)
    deadline = time.monotonic() + 10
    while event.attempt_count < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
        event.refresh_from_db()
    assert event.status == "pending" and event.next_attempt_at > timezone.now()

    assert delivery.sweep() == 0  # not due yet
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert delivery.sweep() == 1
    requests = receiver.wait_for(2, timeout=20)
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"] == event.public_id


@pytest.mark.slow
def test_a_slow_receiver_does_not_delay_the_other_endpoints(tenants, worker, receivers):
    slow, fast = receivers(), receivers()
    slow.default.delay = 3.0
    make_endpoint(tenants.a1.subaccount, slow.url)
    make_endpoint(tenants.b1.subaccount, fast.url)

    for i in range(12):
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={"n": i})
    slow.wait_for(1, timeout=20)  # the slow endpoint now holds a worker thread
    started = time.monotonic()
    for i in range(20):
        webhook_events_publish(subaccount_id=tenants.b1.subaccount.pk, event_type="email.sent", data={"n": i})
    fast.wait_for(20, timeout=20)
    assert time.monotonic() - started < 2.5  # less than one slow response
    # ... and the slow one saw at most the per-endpoint concurrency at once.
    assert len(slow.requests) <= delivery.endpoint_concurrency() * 2


def _in_thread(target, results, *args):
    def run():
        try:
            results.append(target(*args))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_claims_never_take_the_same_rows(tenants, live_db, allow_private):
    endpoint = make_endpoint(tenants.a1.subaccount, "http://127.0.0.1:9/never")
    for _ in range(60):
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    results: list = []
    threads = [_in_thread(delivery._claim, results, endpoint.pk, 25) for _ in range(4)]
    for thread in threads:
        thread.join(30)
    claimed = [c.id for batch in results for c in batch.rows]
    assert len(claimed) == 60 and len(set(claimed)) == 60
    assert not WebhookEvent.objects.filter(next_attempt_at__lte=timezone.now()).exists()


def test_concurrent_workers_deliver_each_event_exactly_once(tenants, live_db, receivers):
    receiver = receivers()
    receiver.default.delay = 0.05
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    for i in range(30):
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={"n": i})
    results: list = []
    threads = [_in_thread(deliver_due, results, endpoint) for _ in range(4)]
    for thread in threads:
        thread.join(60)
    assert len(receiver.requests) == 30
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 30
    assert WebhookAttempt.objects.count() == 30
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"succeeded"}
    endpoint.refresh_from_db()
    assert endpoint.lease_until is None
