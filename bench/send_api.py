"""POST /emails and POST /emails/batch throughput, against a bare Django INSERT view.

    .venv/bin/python bench/send_api.py [--seconds 15] [--connections 16] [--batch-connections 8]

Both run under the same gunicorn as the Procfile (2 gthread workers x 4 threads) on the same PostgreSQL and Redis, in the
same invocation, driven by wrk on loopback. Prints a Markdown table for docs/benchmarks.md.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import create_account, fresh_database, gunicorn, wrk  # noqa: E402

EMAIL = {"from": "Bench <bench@acme.test>", "to": "user@example.com", "subject": "Your receipt",
         "text": "Thanks for your order.", "html": "<p>Thanks for your order.</p>", "tags": ["receipt"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-connections", type=int, default=8)
    args = parser.parse_args()
    fresh_database()
    keys = create_account()
    auth = {"X-SubAccount-ApiKey": keys["subaccount_api_key"]}
    results = {}
    with gunicorn() as base:
        wrk(f"{base}/bench/insert", body=EMAIL, headers={}, seconds=3, connections=args.connections)  # warm-up
        results["baseline"] = wrk(f"{base}/bench/insert", body=EMAIL, headers={}, seconds=args.seconds,
                                  connections=args.connections)
        wrk(f"{base}/api/v1/emails", body=EMAIL, headers=auth, seconds=3, connections=args.connections)
        results["send"] = wrk(f"{base}/api/v1/emails", body=EMAIL, headers=auth, seconds=args.seconds,
                              connections=args.connections)
        batch = {"emails": [dict(EMAIL, to=f"user{i}@example.com") for i in range(500)]}
        # 8 connections: with fewer, both can land on one gunicorn process, whose one
        # interpreter then does all the work on one core while the other process idles.
        results["batch"] = wrk(f"{base}/api/v1/emails/batch", body=batch, headers=auth, seconds=args.seconds,
                               connections=args.batch_connections)
    ratio = results["send"]["rps"] / results["baseline"]["rps"]
    print("| measurement | requests/s | emails/s | p99 latency | non-2xx |")
    print("|---|---|---|---|---|")
    print(f"| baseline: bare Django view, one INSERT | {results['baseline']['rps']:.0f} | - | "
          f"{results['baseline']['p99']} | {results['baseline']['non_2xx']} |")
    print(f"| POST /api/v1/emails | {results['send']['rps']:.0f} | {results['send']['rps']:.0f} | "
          f"{results['send']['p99']} | {results['send']['non_2xx']} |")
    print(f"| POST /api/v1/emails/batch (500 per call) | {results['batch']['rps']:.1f} | "
          f"{results['batch']['rps'] * 500:.0f} | {results['batch']['p99']} | {results['batch']['non_2xx']} |")
    print(f"\nsingle send / baseline = {ratio:.0%} (target >= 50%); batch = "
          f"{results['batch']['rps'] * 500:.0f} emails/s (target >= 5,000)")
    Path("var").mkdir(exist_ok=True)
    Path("var/bench-send-api.json").write_text(json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
