"""Webhook delivery throughput: deliveries/s from pending ``WebhookEvent`` rows to a local receiver.

    .venv/bin/python bench/webhooks_delivery.py [--events 10000] [--slow-events 40]

In one invocation, on a fresh database (``mailroom_bench_webhooks``, Redis db 11; override with
``BENCH_DB_NAME`` / ``BENCH_REDIS_URL``):

1. baseline: one process posts the very bodies the pipeline stored, one after another, with a
   plain ``requests.Session`` (keep-alive) to the same receiver;
2. Mailroom, one endpoint: N pending rows seeded with ``webhook_events_publish_many`` (one
   transaction, the on-commit publish suppressed), then ``webhooks.endpoint_deliver`` tasks
   published (what the on-commit hook and the beat sweeper do) to
   ``celery -A config worker --concurrency 2``, clock running until the receiver has N;
3. Mailroom, four endpoints (N / 4 rows each), so both worker processes have work (one worker
   at a time per endpoint, by design);
4. isolation: the one-endpoint run again with a second endpoint whose receiver answers after
   5 s, its rows published first so a worker is already stuck on it.

The receiver (``bench/webhooks_delivery.py receiver``) is a raw HTTP/1.1 keep-alive responder
on asyncio streams in its own process: it answers ``200`` at once on ``/fast/...`` and after
``--slow-seconds`` on ``/slow/...``, and counts requests and distinct ``webhook-id`` headers.
Rates are N / (last fast request - start); "steady" is (N - 1) / (last - first request).
Prints a Markdown table and writes var/bench-webhooks.json.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Own database and Redis db: other benchmarks drop theirs and drain their queues. Never 14 (CI).
os.environ.setdefault("BENCH_DB_NAME", "mailroom_bench_webhooks")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
# The receiver is on loopback: the SSRF check would refuse it otherwise.
os.environ["MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"

from bench.dispatch import (  # noqa: E402
    PYTHON,
    VAR,
    celery_processes,
    child_pids,
    cpu_seconds,
    free_port,
    loadavg,
    start_run,
)

# --- the receiver (its own process) -----------------------------------------------------------


def receiver_main(port: int, slow_seconds: float) -> None:
    stats = {"fast": 0, "slow": 0, "first": None, "last": None, "ids": set(), "bad": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length, webhook_id = 0, None
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "webhook-id":
                        webhook_id = value.strip()
                if length:
                    await reader.readexactly(length)
                if path.startswith("/slow"):
                    await asyncio.sleep(slow_seconds)
                    stats["slow"] += 1
                else:
                    now = time.time()
                    if stats["first"] is None:
                        stats["first"] = now
                    stats["last"] = now
                    stats["fast"] += 1
                    if webhook_id:
                        stats["ids"].add(webhook_id)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass  # the client closed, or the receiver is stopping with a slow answer pending
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=256)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        while not stop.is_set():
            print(json.dumps({**{k: v for k, v in stats.items() if k != "ids"}, "unique": len(stats["ids"]),
                              "cpu": time.process_time()}), flush=True)
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except TimeoutError:
                pass
        server.close()

    asyncio.run(main())


class Receiver:
    def __init__(self, port: int, slow_seconds: float = 5.0):
        self.port = port
        self.proc = subprocess.Popen([PYTHON, __file__, "receiver", "--port", str(port), "--slow-seconds",
                                      str(slow_seconds)], stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the receiver did not start")
        self.stats: dict = {"fast": 0}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stats = json.loads(line)

    def snapshot(self) -> dict:
        return dict(self.stats)

    def wait_fast(self, total: int, timeout: float, label: str) -> dict:
        deadline, last_print = time.time() + timeout, 0.0
        while True:
            s = self.snapshot()
            if s["fast"] >= total:
                return s
            if time.time() > deadline:
                raise RuntimeError(f"{label}: only {s['fast']} of {total} requests arrived")
            if time.time() - last_print > 5:
                last_print = time.time()
                print(f"  {label}: {s['fast']}/{total} at the receiver", flush=True)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


# --- seeding (Django in this process) -----------------------------------------------------------

def event_data(i: int) -> dict:
    """What an email.delivered event carries (email id, recipient, tags, metadata, details)."""
    return {"email_id": f"msg_bench{i:08d}", "recipient": f"customer{i}@example.org",
            "from": "receipts@bench-plain.example.net", "subject": f"Your receipt #{100000 + i}",
            "tags": ["receipt"], "metadata": {"order": str(100000 + i), "shop": "bench"},
            "smtp_response": "250 2.0.0 Ok: queued as 4Xk2", "mx": "mx.example.org"}


def seed(subaccount, endpoints: list, n: int, *, start: int = 0) -> None:
    """n pending rows spread evenly over ``endpoints`` (each endpoint filters on one event
    type, so each event goes to exactly one endpoint); the publish is suppressed."""
    from django.db import transaction

    from webhooks import services

    types = [e.events[0] for e in endpoints]
    publish = services.enqueue_after_commit
    services.enqueue_after_commit = lambda ids: None  # the benchmark starts the delivery itself
    try:
        with transaction.atomic():
            for chunk in range(start, start + n, 1000):
                services.webhook_events_publish_many([
                    services.Publication(subaccount.pk, types[i % len(types)], event_data(i))
                    for i in range(chunk, min(chunk + 1000, start + n))])
    finally:
        services.enqueue_after_commit = publish


EVENT_TYPES = ["email.delivered", "email.opened", "email.clicked", "email.sent"]


def endpoints_create(subaccount, port: int, count: int, *, kind: str = "fast", first_type: int = 0) -> list:
    from webhooks.services import webhook_endpoint_create

    return [webhook_endpoint_create(subaccount=subaccount, url=f"http://127.0.0.1:{port}/{kind}/{k}",
                                    events=[EVENT_TYPES[(first_type + k) % len(EVENT_TYPES)]],
                                    description=f"bench {kind} {k}")
            for k in range(count)]


def endpoints_clear() -> None:
    from webhooks.models import WebhookEndpoint

    WebhookEndpoint.objects.all().delete()


def status_counts() -> dict:
    from django.db.models import Count

    from webhooks.models import WebhookEvent

    return dict(WebhookEvent.objects.values_list("status").annotate(n=Count("id")))


def bodies() -> list[bytes]:
    from webhooks.models import WebhookEvent

    return [b.encode() for b in WebhookEvent.objects.order_by("id").values_list("body", flat=True)]


# --- the measurements ---------------------------------------------------------------------------

def rates(n: int, start: float, s: dict, *, cpu: float | None, base_fast: int = 0) -> dict:
    total = s["last"] - start
    steady = s["last"] - s["first"]
    return {"deliveries": n, "seconds": round(total, 2), "rate": round(n / total, 1),
            "steady_rate": round((n - 1) / steady, 1) if steady > 0 else None,
            "unique_ids": s["unique"], "received": s["fast"] - base_fast,
            "sender_cpu_ms": round(cpu / n * 1000, 3) if cpu is not None else None, "loadavg": loadavg()}


def baseline(receiver: Receiver, payloads: list[bytes]) -> dict:
    import requests

    url = f"http://127.0.0.1:{receiver.port}/fast/baseline"
    session = requests.Session()
    before = receiver.snapshot()["fast"]
    start, cpu = time.time(), time.process_time()
    first = None
    for body in payloads:
        r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=15)
        r.raise_for_status()
        first = first or time.time()
    last = time.time()
    used = time.process_time() - cpu
    s = receiver.wait_fast(before + len(payloads), 60, "baseline")
    n = len(payloads)
    return {"deliveries": n, "seconds": round(last - start, 2), "rate": round(n / (last - start), 1),
            "steady_rate": round((n - 1) / (last - first), 1), "unique_ids": None,
            "received": s["fast"] - before, "sender_cpu_ms": round(used / n * 1000, 3), "loadavg": loadavg()}


def mailroom_run(receiver: Receiver, worker, endpoints: list, n: int, label: str, *, slow: list | None = None) -> dict:
    from webhooks import delivery

    pids = [worker.pid, *child_pids(worker.pid)]
    cpu = {pid: cpu_seconds(pid) for pid in pids}
    before = receiver.snapshot()
    if slow:
        delivery.endpoints_enqueue([e.pk for e in slow])
        time.sleep(1.0)  # a worker is now inside the slow endpoint's task
        before = receiver.snapshot()
    start = time.time()
    delivery.endpoints_enqueue([e.pk for e in endpoints])
    # The receiver's first/last are over its whole life: wait for the first request of this run.
    while receiver.snapshot()["fast"] == before["fast"]:
        time.sleep(0.01)
    first = time.time()
    s = receiver.wait_fast(before["fast"] + n, 600, label)
    used = sum(cpu_seconds(pid) - b for pid, b in cpu.items())
    s = {**s, "first": min(first, s["last"]), "unique": s["unique"] - before["unique"]}
    result = rates(n, start, s, cpu=used, base_fast=before["fast"])
    result["slow_answered_during_run"] = receiver.snapshot()["slow"] - before["slow"]
    return result


def row(label: str, r: dict, base: dict | None) -> str:
    ratio = f"{r['steady_rate'] / base['steady_rate']:.0%}" if base else "-"
    uniq = r["unique_ids"] if r["unique_ids"] is not None else "-"
    return (f"| {label} | {r['deliveries']} | {r['seconds']} | {r['rate']:.0f} | {r['steady_rate']:.0f} | {ratio} | "
            f"{uniq} | {r['sender_cpu_ms']} | {r['loadavg'].split()[0]} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--slow-events", type=int, default=40)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    n = args.events
    info, _, subaccount = start_run(MAILROOM_LOG_LEVEL="WARNING")
    print(f"machine: {info}", flush=True)
    port = free_port()
    receiver = Receiver(port, args.slow_seconds)
    results: dict = {"machine": info, "events": n}
    try:
        with celery_processes(free_port(), concurrency=args.concurrency, name="webhooks") as worker:
            print("Mailroom, 1 endpoint", flush=True)
            endpoints = endpoints_create(subaccount, port, 1)
            seed(subaccount, endpoints, n)
            payloads = bodies()
            results["one"] = mailroom_run(receiver, worker, endpoints, n, "1 endpoint")
            results["one"]["status"] = status_counts()
            endpoints_clear()

            print("baseline: requests.Session", flush=True)
            results["baseline"] = baseline(receiver, payloads)

            print("Mailroom, 4 endpoints", flush=True)
            endpoints = endpoints_create(subaccount, port, 4)
            seed(subaccount, endpoints, n)
            results["four"] = mailroom_run(receiver, worker, endpoints, n, "4 endpoints")
            results["four"]["status"] = status_counts()
            endpoints_clear()

            print(f"Mailroom, 1 endpoint + a slow endpoint ({args.slow_seconds} s per request)", flush=True)
            slow = endpoints_create(subaccount, port, 1, kind="slow", first_type=1)
            seed(subaccount, slow, args.slow_events)
            endpoints = endpoints_create(subaccount, port, 1)
            seed(subaccount, endpoints, n, start=args.slow_events)
            results["with_slow"] = mailroom_run(receiver, worker, endpoints, n, "1 endpoint + slow", slow=slow)
            results["with_slow"]["status"] = status_counts()
            endpoints_clear()
    finally:
        receiver.stop()
    info["loadavg_end"] = loadavg()
    (VAR / "bench-webhooks.json").write_text(json.dumps(results, indent=2, default=str))

    base = results["baseline"]
    print(f"\nRun {info['date']} (load average {info['loadavg_start']} at start, {info['loadavg_end']} at end), "
          f"{n} deliveries, {args.concurrency} worker processes, "
          f"MAILROOM_WEBHOOK_ENDPOINT_CONCURRENCY=4:\n")
    print("| sender | deliveries | seconds (start to last) | deliveries/s | steady deliveries/s | vs baseline (steady) "
          "| distinct webhook-id | sender CPU ms/delivery | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(row("baseline: requests.Session loop, one process", base, None))
    print(row("Mailroom, 1 endpoint", results["one"], base))
    print(row("Mailroom, 4 endpoints", results["four"], base))
    print(row(f"Mailroom, 1 endpoint + slow endpoint ({args.slow_seconds:.0f} s/request, "
              f"{args.slow_events} pending)", results["with_slow"], base))
    best = max(results["one"]["steady_rate"], results["four"]["steady_rate"])
    print(f"\nbest steady rate {best:.0f}/s (target >= 500/s): {'met' if best >= 500 else 'missed'}; "
          f"fast endpoint with a slow one present: {results['with_slow']['steady_rate']:.0f}/s against "
          f"{results['one']['steady_rate']:.0f}/s alone; slow requests answered meanwhile: "
          f"{results['with_slow']['slow_answered_during_run']}")
    for key in ("one", "four", "with_slow"):
        print(f"  {key}: statuses {results[key]['status']}")


def cli() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        parser = argparse.ArgumentParser()
        parser.add_argument("receiver")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--slow-seconds", type=float, default=5.0)
        args = parser.parse_args()
        receiver_main(args.port, args.slow_seconds)
    else:
        main()


if __name__ == "__main__":
    cli()
