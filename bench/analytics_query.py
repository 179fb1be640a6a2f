"""GET /analytics/emails over rollups against counting the email and event tables directly.

    .venv/bin/python bench/analytics_query.py [--emails 1000000] [--days 90] [--reuse]

Generates N live emails and their events (queued, sent, delivered, delays, hard/soft bounces,
human and machine opens, clicks, complaints, unsubscribes, failures) spread over ``--days``
days in one sub-account, with SQL ``generate_series`` into a fresh PostgreSQL database
(``BENCH_DB_NAME``, default ``mr_analytics_bench``), then builds the rollups with the product's
own rebuild (``analytics_rebuild``). In the same run it measures:

- the 30-day, group_by=day query through the API (gunicorn on loopback, one client, p50/p95/p99);
- the same numbers from the rollup selector in-process, and from a naive COUNT ... GROUP BY
  over the event rows joined to the emails (the baseline), checking both give the same counts;
- the cost of rollups when recording a batch of 500 events and a single event.

``--reuse`` keeps the database of a previous run (same ``--emails``). Prints a Markdown
table for docs/analytics.md and writes var/bench-analytics.json.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DB_NAME", "mr_analytics_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

from bench import harness  # noqa: E402

STATE = ROOT / "var" / "bench-analytics-state.json"
PORT = 8731


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def timed(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> dict:
    return {"runs": len(samples), "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(percentile(samples, 95), 2), "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2)}


# --- seeding -------------------------------------------------------------------------------


# r: a per-email pseudo-random 0..999 (delivery outcome); h: 0..99 (engagement)
R = "mod(em.id * 2654435761, 1000)"
H = "mod(em.id * 40503 + 7, 100)"
EVENT_KINDS = [
    # (type, suffix, offset, data SQL, condition)
    ("queued", "q", "0 seconds", "'{}'::jsonb", "true"),
    ("sent", "s", "2 seconds", "'{}'::jsonb", f"{R} < 995"),
    ("failed", "f", "1 minute", "jsonb_build_object('reason', '550 5.7.1 rejected')", f"{R} >= 995"),
    ("delivered", "d", "5 minutes", "'{}'::jsonb", f"{R} < 960"),
    ("delivery_delayed", "w", "10 minutes", "'{}'::jsonb", f"{R} >= 960 AND {R} < 970"),
    ("delivered", "d2", "2 hours", "'{}'::jsonb", f"{R} >= 960 AND {R} < 970"),
    ("bounced", "b", "1 minute",
     f"jsonb_build_object('bounce_type', CASE WHEN {R} < 988 THEN 'hard' ELSE 'soft' END)",
     f"{R} >= 970 AND {R} < 995"),
    ("opened", "o", "3 hours", f"jsonb_build_object('unique', true, 'machine', {H} < 5)",
     f"{R} < 970 AND {H} < 45"),
    ("opened", "o2", "1 day", "jsonb_build_object('unique', false, 'machine', false)",
     f"{R} < 970 AND {H} >= 5 AND {H} < 15"),
    ("clicked", "c", "3 hours 10 minutes", "jsonb_build_object('unique', true, 'url', 'https://acme.test/')",
     f"{R} < 970 AND {H} >= 5 AND {H} < 12"),
    ("complained", "x", "2 hours", "'{}'::jsonb", f"{R} < 970 AND {H} = 99"),
    ("unsubscribed", "u", "1 day 1 hour", "'{}'::jsonb", f"{R} < 970 AND {H} = 98"),
]


def seed(subaccount, *, emails: int, days: int) -> dict:
    from django.db import connection, transaction

    from emails.models import Email, EmailEvent

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    spacing = days * 86400 / emails
    # mod() rather than %: a literal % would clash with the driver's parameter markers
    tags = ("CASE WHEN mod(g, 3) = 0 THEN jsonb_build_array('tag' || mod(g, 5), 'newsletter') "
            "ELSE jsonb_build_array('tag' || mod(g, 5)) END")
    created = f"('{start.isoformat()}'::timestamptz + make_interval(secs => (g - 1) * {spacing!r}))"
    email_sql, email_params = harness.insert_select(Email, {
        "public_id": "'msg_bench' || lpad(g::text, 10, '0')",
        "account_id": str(int(subaccount.account_id)), "subaccount_id": str(int(subaccount.pk)),
        "environment": "'live'", "status": "'delivered'",
        "from_header": "'bench@d' || mod(g, 3) || '.bench.test'",
        "from_address": "'bench@d' || mod(g, 3) || '.bench.test'",
        "from_domain": "'d' || mod(g, 3) || '.bench.test'",
        "to": "jsonb_build_array('user' || g || '@example.com')",
        "subject": "'Bench'", "tags": tags,
        "tags_index": ("CASE WHEN mod(g, 3) = 0 THEN ',tag' || mod(g, 5) || ',newsletter,' "
                       "ELSE ',tag' || mod(g, 5) || ',' END"),
        "message_id": "'<bench' || g || '@bench.test>'",
        "created_at": created, "updated_at": created,
    }, "FROM generate_series(1, %s) AS g", [emails])
    timings = {}
    with transaction.atomic(), connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(email_sql, email_params)
        timings["emails_s"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        for event_type, suffix, offset, data, condition in EVENT_KINDS:
            sql, params = harness.insert_select(EmailEvent, {
                "public_id": f"'evt_b' || em.id || '{suffix}'", "type": f"'{event_type}'",
                "recipient": "em.\"to\"->>0", "data": data,
                "timestamp": f"em.created_at + interval '{offset}'", "provider_event_id": "NULL",
                "email_id": "em.id",
            }, f"FROM {Email._meta.db_table} em WHERE em.subaccount_id = %s AND {condition}", [subaccount.pk])
            cursor.execute(sql, params)
        timings["events_s"] = round(time.perf_counter() - began, 1)
        cursor.execute(f"SELECT count(*) FROM {EmailEvent._meta.db_table}")
        timings["events"] = cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return timings


# --- measurements --------------------------------------------------------------------------


def naive_counts(subaccount, from_date, to_date) -> dict:
    """What one would write without rollups: count the event rows, joined to their emails."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDate

    from emails.models import EmailEvent

    # jsonb @> (contains) so a missing key reads as "not set" rather than NULL
    human_open = Q(type="opened") & ~Q(data__contains={"machine": True})
    counters = {
        "accepted": Count("id", filter=Q(type="queued") | (Q(type="scheduled")
                                                           & ~Q(data__contains={"rescheduled": True}))),
        "sent": Count("id", filter=Q(type="sent")),
        "delivered": Count("id", filter=Q(type="delivered")),
        "delivery_delayed": Count("id", filter=Q(type="delivery_delayed")),
        "bounced": Count("id", filter=Q(type="bounced")),
        "complained": Count("id", filter=Q(type="complained")),
        "opened": Count("id", filter=human_open),
        "unique_opened": Count("id", filter=human_open & ~Q(data__contains={"unique": False})),
        "machine_opened": Count("id", filter=Q(type="opened", data__contains={"machine": True})),
        "clicked": Count("id", filter=Q(type="clicked")),
        "unique_clicked": Count("id", filter=Q(type="clicked") & ~Q(data__contains={"unique": False})),
        "unsubscribed": Count("id", filter=Q(type="unsubscribed")),
        "failed": Count("id", filter=Q(type="failed")),
    }
    start = datetime.combine(from_date, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(to_date + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    rows = (EmailEvent.objects.filter(email__subaccount=subaccount, email__environment="live",
                                      timestamp__gte=start, timestamp__lt=end)
            .annotate(day=TruncDate("timestamp", tzinfo=UTC)).values("day").annotate(**counters).order_by("day"))
    return {row["day"].isoformat(): {name: row[name] for name in counters} for row in rows}


def api_latency(url: str, key: str, runs: int) -> list[float]:
    request = urllib.request.Request(url, headers={"X-SubAccount-ApiKey": key})

    def call():
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status
            response.read()

    timed(call, 20)  # warm-up: connections, caches, key lookup
    return timed(call, runs)


def recording_cost(subaccount) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from emails.models import Email
    from emails.services import events as events_module
    from emails.services.events import NewEvent, email_events_record

    emails = list(Email.objects.filter(subaccount=subaccount).order_by("-id")[:500])
    now = datetime.now(UTC)
    spent: list[float] = []
    original = events_module.rollups_apply

    def timed_rollups(rows):
        began = time.perf_counter()
        original(rows)
        spent.append((time.perf_counter() - began) * 1000)

    events_module.rollups_apply = timed_rollups
    result = {}
    try:
        for label, batch in (("batch_of_500", emails), ("single", emails[:1])):
            events = [NewEvent(email=e, type="opened", recipient=e.to[0], data={"unique": False, "machine": False},
                               timestamp=now) for e in batch]
            spent.clear()
            with CaptureQueriesContext(connection) as queries:
                began = time.perf_counter()
                email_events_record(events)
                total = (time.perf_counter() - began) * 1000
            rollup = [q for q in queries.captured_queries if "analytics_dailycounter" in q["sql"]]
            result[label] = {"events": len(events), "statements": len(queries.captured_queries),
                             "rollup_statements": len(rollup), "rollup_ms": round(sum(spent), 2),
                             "total_ms": round(total, 2)}
    finally:
        events_module.rollups_apply = original
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=300, help="API requests measured")
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="Keep the database of a previous run.")
    args = parser.parse_args()

    env = harness.bench_env()
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    reuse = args.reuse and state.get("emails") == args.emails and state.get("db") == harness.BENCH_DB
    if not reuse:
        harness.fresh_database()
        state = {"emails": args.emails, "db": harness.BENCH_DB, **harness.create_account()}

    import django

    django.setup()
    from django.conf import settings

    from accounts.models import SubAccount
    from analytics import selectors
    from analytics.services import rollups_rebuild

    settings.DEBUG = False
    subaccount = SubAccount.objects.get(public_id=state["subaccount_id"])
    results: dict = {"emails": args.emails, "days": args.days}
    if not reuse:
        print(f"seeding {args.emails:,} emails over {args.days} days ...", flush=True)
        results["seed"] = seed(subaccount, emails=args.emails, days=args.days)
        began = time.perf_counter()
        report = rollups_rebuild(subaccount=subaccount)
        results["rebuild"] = {"seconds": round(time.perf_counter() - began, 1), "events": report.events,
                              "rollup_rows": report.rows}
        state["seed"], state["rebuild"] = results["seed"], results["rebuild"]
        STATE.parent.mkdir(exist_ok=True)
        STATE.write_text(json.dumps(state))
    else:
        results["seed"], results["rebuild"] = state.get("seed"), state.get("rebuild")
    print(f"seed: {results['seed']}; rollups: {results['rebuild']}", flush=True)

    to_date = selectors.utc_today() - timedelta(days=1)
    from_date = to_date - timedelta(days=29)

    def rollup_query():
        return selectors.analytics_emails(subaccount=subaccount, from_date=from_date, to_date=to_date)

    rollup = rollup_query()
    naive = naive_counts(subaccount, from_date, to_date)
    for bucket in rollup["by_date"]:
        expected = naive.get(bucket["date"], {})
        for name, count in expected.items():
            assert bucket[name] == count, (bucket["date"], name, bucket[name], count)
    results["checked_equal"] = True
    results["rollup_selector"] = summary(timed(rollup_query, 200))
    naive_counts(subaccount, from_date, to_date)  # warm the cache for a fair baseline
    results["naive_count"] = summary(timed(lambda: naive_counts(subaccount, from_date, to_date), args.naive_runs))
    results["recording"] = recording_cost(subaccount)

    query = f"from_date={from_date}&to_date={to_date}&group_by=day"
    with harness.gunicorn(port=PORT, workers=2) as base:
        results["api_emails_30d_day"] = summary(api_latency(
            f"{base}/api/v1/analytics/emails?{query}", state["subaccount_api_key"], args.runs))
        results["api_emails_366d_week"] = summary(api_latency(
            f"{base}/api/v1/analytics/emails?from_date={to_date - timedelta(days=365)}&to_date={to_date}"
            "&group_by=week", state["subaccount_api_key"], args.runs))
        results["api_tags_30d"] = summary(api_latency(
            f"{base}/api/v1/analytics/tags?from_date={from_date}&to_date={to_date}", state["subaccount_api_key"],
            args.runs))

    api, selector, baseline = results["api_emails_30d_day"], results["rollup_selector"], results["naive_count"]
    results["speedup_selector"] = round(baseline["p50_ms"] / selector["p50_ms"], 1)
    results["speedup_api_p95"] = round(baseline["p50_ms"] / api["p95_ms"], 1)
    rec = results["recording"]
    print()
    print(f"{args.emails:,} emails, {results['rebuild']['events']:,} events over {args.days} days in one sub-account; "
          f"{results['rebuild']['rollup_rows']:,} rollup rows. 30 days, group_by=day:")
    print()
    print("| measurement | p50 | p95 | p99 | runs |")
    print("|---|---|---|---|---|")
    for label, key in (("GET /analytics/emails through the API (gunicorn, loopback)", "api_emails_30d_day"),
                       ("GET /analytics/emails, 366 days by ISO week, through the API", "api_emails_366d_week"),
                       ("GET /analytics/tags, 30 days, through the API", "api_tags_30d"),
                       ("rollup selector in-process (the query behind the API)", "rollup_selector"),
                       ("baseline: COUNT ... GROUP BY day over events JOIN emails", "naive_count")):
        r = results[key]
        print(f"| {label} | {r['p50_ms']} ms | {r['p95_ms']} ms | {r['p99_ms']} ms | {r['runs']} |")
    print()
    print(f"baseline p50 / API p95 = {results['speedup_api_p95']}x (target >= 20x); baseline / selector p50 = "
          f"{results['speedup_selector']}x; API p95 {api['p95_ms']} ms (target <= 50 ms); both gave the same counts.")
    print(f"recording 500 events: {rec['batch_of_500']['rollup_statements']} rollup statement, "
          f"{rec['batch_of_500']['rollup_ms']} ms of {rec['batch_of_500']['total_ms']} ms; one event: "
          f"{rec['single']['rollup_statements']} statement, {rec['single']['rollup_ms']} ms of "
          f"{rec['single']['total_ms']} ms")
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-analytics.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
