"""Admin pages with a million emails: the email list (plain, filtered, searched) and an email's page.

    .venv/bin/python bench/admin_pages.py [--emails 1000000] [--runs 30] [--reuse]

Fills a fresh PostgreSQL database (``BENCH_DB_NAME``, default ``mr_admin_bench``) with SQL
``generate_series``: N live emails over 90 days in two accounts (four sub-accounts), each
with a recipient, a delivery attempt and its events (queued, sent, delivered; bounces and
failures for a few), then ANALYZE. Renders each page in-process through Django's test
client as a logged-in superuser (template rendering included, no network), after a warm-up,
and prints p50/p95 per page for docs/admin.md; writes var/bench-admin.json. The target is
300 ms for the email list and an email's page.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_DB_NAME", "mr_admin_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

from bench import harness  # noqa: E402

TARGET_MS = 300


def seed(*, emails: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts.services import account_create, subaccount_create
    from emails.models import DeliveryAttempt, Email, EmailEvent, EmailRecipient

    subaccounts = []
    for name in ("Acme", "Globex"):
        account = account_create(name=name, plan_code="enterprise", contact_email=f"ops@{name.lower()}.test")
        subaccounts += [subaccount_create(account=account, name=f"{name} {n}") for n in (1, 2)]
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
    end = datetime.now(UTC)
    spacing = 90 * 86400 / emails
    created = f"('{(end - timedelta(days=90)).isoformat()}'::timestamptz + make_interval(secs => (g - 1) * {spacing!r}))"
    sub = "CASE mod(g, 4) " + " ".join(f"WHEN {i} THEN {s.pk}" for i, s in enumerate(subaccounts)) + " END"
    account = "CASE mod(g, 4) " + " ".join(f"WHEN {i} THEN {s.account_id}" for i, s in enumerate(subaccounts)) + " END"
    status = ("CASE WHEN mod(g, 1000) = 0 THEN 'failed' WHEN mod(g, 200) = 1 THEN 'bounced' "
              f"WHEN g > {emails - 500} THEN 'queued' ELSE 'delivered' END")
    html = ("'<html><body><h1>Order ' || g || '</h1><p>' || repeat('Thanks for your order. ', 40) || "
            "'</p><a href=\"https://acme.test/o/' || g || '\">Track</a></body></html>'")
    email_sql, email_params = harness.insert_select(Email, {
        "public_id": "'msg_bench' || lpad(g::text, 10, '0')", "account_id": account, "subaccount_id": sub,
        "environment": "'live'", "status": status,
        "from_header": "'Acme <hello@d' || mod(g, 3) || '.bench.test>'",
        "from_address": "'hello@d' || mod(g, 3) || '.bench.test'", "from_domain": "'d' || mod(g, 3) || '.bench.test'",
        "to": "jsonb_build_array('user' || g || '@example.com')", "subject": "'Your order ' || g",
        "html": html, "text": "'Thanks for your order ' || g", "attempts": "1",
        "message_id": "'<msg_bench' || lpad(g::text, 10, '0') || '@d' || mod(g, 3) || '.bench.test>'",
        "created_at": created, "updated_at": created, "sent_at": created, "next_attempt_at": created,
    }, "FROM generate_series(1, %s) AS g", [emails])
    timings = {}
    with transaction.atomic(), connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(email_sql, email_params)
        timings["emails_s"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        table = Email._meta.db_table
        sql, params = harness.insert_select(EmailRecipient, {
            "email_id": "em.id", "kind": "'to'", "address": "em.\"to\"->>0"}, f"FROM {table} em", [])
        cursor.execute(sql, params)
        sql, params = harness.insert_select(DeliveryAttempt, {
            "email_id": "em.id", "number": "1", "attempted_at": "em.created_at + interval '2 seconds'",
            "outcome": "CASE WHEN em.status = 'failed' THEN 'permanent_failure' ELSE 'sent' END",
            "response": "'250 2.0.0 OK queued'", "duration_ms": "40"},
            f"FROM {table} em WHERE em.status <> 'queued'", [])
        cursor.execute(sql, params)
        for event_type, suffix, offset, condition in (
                ("queued", "q", "0 seconds", "true"), ("sent", "s", "2 seconds", "em.status <> 'queued'"),
                ("delivered", "d", "5 minutes", "em.status = 'delivered'"),
                ("bounced", "b", "1 minute", "em.status = 'bounced'"),
                ("failed", "f", "2 seconds", "em.status = 'failed'")):
            sql, params = harness.insert_select(EmailEvent, {
                "public_id": f"'evt_b' || em.id || '{suffix}'", "type": f"'{event_type}'",
                "recipient": "em.\"to\"->>0", "timestamp": f"em.created_at + interval '{offset}'",
                "provider_event_id": "NULL", "email_id": "em.id"}, f"FROM {table} em WHERE {condition}", [])
            cursor.execute(sql, params)
        timings["children_s"] = round(time.perf_counter() - began, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return timings


def measure(runs: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from emails.models import Email

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench"))
    last = Email.objects.order_by("-pk").values_list("pk", flat=True).first()
    middle = Email.objects.filter(pk=last // 2).values("pk", "message_id", "to").get()
    pages = [
        ("email list", "/admin/emails/email/"),
        ("email list, page 50", "/admin/emails/email/?p=50"),
        ("email list, status=failed", "/admin/emails/email/?status__exact=failed"),
        ("email list, one account", "/admin/emails/email/?account=" + Email.objects.values_list(
            "account__public_id", flat=True).first()),
        ("email list, search by recipient", "/admin/emails/email/?" + urlencode({"q": middle["to"][0]})),
        ("email list, search by Message-ID", "/admin/emails/email/?" + urlencode({"q": middle["message_id"]})),
        ("email page", f"/admin/emails/email/{middle['pk']}/change/"),
        ("email events list", "/admin/emails/emailevent/"),
        ("operations dashboard (index)", "/admin/"),
    ]
    results = []
    for name, url in pages:
        samples = []
        for attempt in range(runs + 3):
            began = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - began) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if attempt >= 3:  # warm-up: connections, template loading
                samples.append(elapsed)
        samples.sort()
        results.append({"page": name, "url": url, "p50_ms": round(statistics.median(samples), 1),
                        "p95_ms": round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 1)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run")
    args = parser.parse_args()
    os.environ.update(harness.bench_env())
    if not args.reuse:
        harness.fresh_database()
    import django

    django.setup()
    timings = seed(emails=args.emails) if not args.reuse else {}
    results = measure(args.runs)
    print(f"\n{args.emails:,} emails; seeding: {timings}\n")
    print("| Page | p50 ms | p95 ms |\n| --- | ---: | ---: |")
    for row in results:
        print(f"| {row['page']} | {row['p50_ms']} | {row['p95_ms']} |")
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-admin.json").write_text(json.dumps(
        {"emails": args.emails, "seeding": timings, "pages": results, "target_ms": TARGET_MS}, indent=2))
    slow = [row["page"] for row in results if row["page"].startswith("email") and row["p95_ms"] > TARGET_MS]
    if slow:
        print(f"\nOver {TARGET_MS} ms at p95: {', '.join(slow)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
