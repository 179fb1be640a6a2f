"""GET /t/o/{token} (open pixel) and GET /t/c/{token} (click redirect) throughput, against the
bare Django INSERT view, in the same run.

    .venv/bin/python bench/tracking_endpoints.py [--seconds 15] [--connections 16]

One tracked email is sent through the API; its pixel and first link are then hit by wrk on
loopback under the same gunicorn (bench.harness.gunicorn) on the same PostgreSQL. Each
hit is one INSERT (a click also reads its target): the events are made later by the flush, whose
own rate is measured at the end. Use BENCH_DB_NAME / BENCH_REDIS_URL to keep away from other runs.
"""

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, bench_env, create_account, fresh_database, gunicorn, wrk  # noqa: E402

EMAIL = {"from": "Bench <bench@acme.test>", "to": "user@example.com", "subject": "Your receipt",
         "text": "Thanks for your order.", "track_opens": True, "track_clicks": True,
         "html": '<p>Thanks for your <a href="https://shop.example.com/orders/42?ref=mail">order</a>.</p>'}


def wrk_get(url: str, *, seconds: int, connections: int, threads: int = 2) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {"rps": rps, "non_2xx_3xx": int(bad.group(1)) if bad else 0, "p99": p99.group(1) if p99 else "?"}


def _send(base: str, key: str) -> tuple[str, str]:
    request = urllib.request.Request(f"{base}/api/v1/emails", data=json.dumps(EMAIL).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-SubAccount-ApiKey": key})
    email_id = json.load(urllib.request.urlopen(request))["data"]["id"]
    request = urllib.request.Request(f"{base}/api/v1/emails/{email_id}", headers={"X-SubAccount-ApiKey": key})
    html = json.load(urllib.request.urlopen(request))["data"]["html"]
    [open_path] = re.findall(r"(/t/o/[A-Za-z0-9_-]{50})", html)
    [click_path] = re.findall(r"(/t/c/[A-Za-z0-9_-]{50})", html)
    return open_path, click_path


def _flush_rate() -> tuple[int, float]:
    code = ("import time, django; django.setup(); from emails.models import TrackingHit; "
            "from emails.tracking.hits import tracking_hits_flush; n = TrackingHit.objects.count(); "
            "t = time.perf_counter(); done = 0\n"
            "while done < min(n, 20000):\n    done += tracking_hits_flush()\n"
            "print(done, time.perf_counter() - t)")
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code], cwd=ROOT, env=bench_env(),
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=8712)
    args = parser.parse_args()
    fresh_database()
    keys = create_account()
    results = {}
    with gunicorn(port=args.port) as base:
        open_path, click_path = _send(base, keys["subaccount_api_key"])
        wrk(f"{base}/bench/insert", body={"a": 1}, headers={}, seconds=3, connections=args.connections)
        results["baseline"] = wrk(f"{base}/bench/insert", body={"a": 1}, headers={}, seconds=args.seconds,
                                  connections=args.connections)
        wrk_get(base + open_path, seconds=3, connections=args.connections)
        results["open"] = wrk_get(base + open_path, seconds=args.seconds, connections=args.connections)
        results["click"] = wrk_get(base + click_path, seconds=args.seconds, connections=args.connections)
        results["junk"] = wrk_get(base + "/t/c/" + "A" * 50, seconds=5, connections=args.connections)
    time.sleep(0.5)
    flushed, elapsed = _flush_rate()
    print("| measurement | requests/s | p99 latency | non-2xx/3xx |")
    print("|---|---|---|---|")
    print(f"| baseline: bare Django view, one INSERT | {results['baseline']['rps']:.0f} | "
          f"{results['baseline']['p99']} | {results['baseline']['non_2xx']} |")
    for name, label in (("open", "GET /t/o/{token} (pixel)"), ("click", "GET /t/c/{token} (302)"),
                        ("junk", "GET /t/c/<forged> (404)")):
        print(f"| {label} | {results[name]['rps']:.0f} | {results[name]['p99']} | {results[name]['non_2xx_3xx']} |")
    print(f"\nflush: {flushed} hits -> events in {elapsed:.1f} s ({flushed / elapsed:.0f} hits/s)")
    print(f"open / baseline = {results['open']['rps'] / results['baseline']['rps']:.0%}, "
          f"click / baseline = {results['click']['rps'] / results['baseline']['rps']:.0%} (target: >= 1,000 req/s)")
    Path("var").mkdir(exist_ok=True)
    Path("var/bench-tracking.json").write_text(json.dumps(
        {**{k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in results.items()},
         "flush": {"hits": flushed, "seconds": elapsed}}, indent=2))


if __name__ == "__main__":
    main()
