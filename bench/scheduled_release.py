"""Scheduled release latency: N emails scheduled within one minute, released by the real beat.

    .venv/bin/python bench/scheduled_release.py [--emails 10000] [--window 60] [--lead 120] [--dkim]

On a fresh database (``mailroom_bench_dispatch``, Redis db 13, as bench/dispatch.py), N live emails are accepted in-process
with ``email_send_batch`` (500 per call), their ``scheduled_at`` spread evenly over a
``--window``-second minute that starts ``--lead`` seconds later. Then ``celery beat`` (the
product's schedule: the sweeper every second) and ``celery -A config worker --concurrency 2``
run against that database, their SMTP backend pointed at an aiosmtpd sink in its own
process, which records when each Message-ID arrives. Latency = arrival at the sink -
``scheduled_at``. Prints a Markdown table and writes var/bench-scheduled-release.json.

``--dkim`` sends from a verified domain with a DKIM key (signed mail), otherwise from a domain
without one.
"""

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dispatch import (  # noqa: E402
    DKIM_DOMAIN,
    PLAIN_DOMAIN,
    VAR,
    Sink,
    celery_processes,
    loadavg,
    prepare_run,
    seed,
    signed_domain,
)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which they fall due")
    parser.add_argument("--lead", type=float, default=120.0, help="seconds from seeding to the first due time")
    parser.add_argument("--dkim", action="store_true", help="send from a verified domain with a DKIM key")
    args = parser.parse_args()
    n = args.emails
    info, port, _keys, subaccount = prepare_run()
    domain = PLAIN_DOMAIN
    if args.dkim:
        signed_domain(subaccount)
        domain = DKIM_DOMAIN

    first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
    print(f"seeding {n} emails due between {first_due:%H:%M:%S} and "
          f"{first_due + timedelta(seconds=args.window):%H:%M:%S}", flush=True)
    seeded_at = time.time()
    ids = seed(subaccount, n, domain=domain, scheduled_at=lambda i: first_due + timedelta(seconds=args.window * i / n))
    seeding = time.time() - seeded_at
    if time.time() > first_due.timestamp() - 15:
        raise SystemExit(f"seeding took {seeding:.0f} s: rerun with a --lead above {seeding + 30:.0f}")

    from emails.models import Email

    due = {mid: at.timestamp() for mid, at in Email.objects.filter(pk__in=ids).values_list("message_id", "scheduled_at")}
    sink = Sink(port, n, "scheduled")
    with celery_processes(port, beat=True, name="scheduled"):
        print(f"  worker and beat running; first email due in {first_due.timestamp() - time.time():.0f} s", flush=True)
        received = sink.wait(args.lead + args.window + 1800, label="scheduled release")
    latencies = [received["times"][mid] - at for mid, at in due.items() if mid in received["times"]]
    missing = n - len(latencies)
    result = {
        "machine": {**info, "loadavg_end": loadavg()},
        "emails": n, "window_seconds": args.window, "dkim": args.dkim, "seeding_seconds": round(seeding, 1),
        "missing": missing, "received": received["received"],
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
        "max": max(latencies), "min": min(latencies),
        "over_2s": sum(1 for v in latencies if v > 2.0),
    }
    (VAR / "bench-scheduled-release.json").write_text(json.dumps(result, indent=2))
    print(f"\n{info['date']}; nproc {info['nproc']}, Python {info['python']}, PostgreSQL {info['postgresql']}; "
          f"load average {info['loadavg_start']} at start, {result['machine']['loadavg_end']} at end\n")
    print("| emails | due within | DKIM | p50 | p95 | p99 | max | later than 2 s | missing |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {n} | {args.window:.0f} s | {'on' if args.dkim else 'off'} | {result['p50']:.2f} s | "
          f"{result['p95']:.2f} s | {result['p99']:.2f} s | {result['max']:.2f} s | {result['over_2s']} | {missing} |")
    print(f"\np99 {result['p99']:.2f} s (target <= 2 s): {'met' if result['p99'] <= 2 and not missing else 'MISSED'}")


if __name__ == "__main__":
    main()
