"""Worker memory over a long run: RSS of every Celery worker process while N emails go out.

    .venv/bin/python bench/worker_memory.py [--emails 100000] [--dkim]

On a fresh database (``mailroom_bench_dispatch``, Redis db 13, as bench/dispatch.py), N live emails are accepted in-process with
``email_send_batch`` (dispatch not published), then ``celery -A config worker --concurrency 2``
drains them (``emails.dispatch_due`` rounds) to an aiosmtpd sink in its own process. Live mail
goes through the whole path (MIME, optional DKIM, SMTP), which test keys would skip. Every
second the VmRSS of the worker's parent and of each prefork child is read from
/proc/<pid>/status. Prints start/peak/end per process and the RSS at each tenth of the run;
writes var/bench-worker-memory.json.
"""

import argparse
import json
import sys
import threading
import time
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
    rates,
    seed,
    sent_count,
    signed_domain,
    trigger_draining,
)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


class Sampler(threading.Thread):
    """Samples (seconds, messages at the sink, {pid: MB}) every second."""

    def __init__(self, parent: int, sink: Sink):
        super().__init__(daemon=True)
        self.parent, self.sink = parent, sink
        self.samples: list[tuple[float, int, dict[int, float]]] = []
        self.stop = threading.Event()
        self.started = time.time()

    def sample(self) -> None:
        pids = [self.parent, *children(self.parent)]
        values = {pid: rss for pid in pids if (rss := rss_mb(pid)) is not None}
        self.samples.append((round(time.time() - self.started, 1), self.sink.count, values))

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--dkim", action="store_true", help="send from a verified domain with a DKIM key")
    args = parser.parse_args()
    n = args.emails
    info, port, _keys, subaccount = prepare_run()
    domain = PLAIN_DOMAIN
    if args.dkim:
        signed_domain(subaccount)
        domain = DKIM_DOMAIN
    print(f"seeding {n} emails", flush=True)
    seeded_at = time.time()
    ids = seed(subaccount, n, domain=domain)
    seeding = time.time() - seeded_at
    print(f"  seeded in {seeding:.0f} s", flush=True)

    sink = Sink(port, n, "memory")
    with celery_processes(port, name="memory") as worker:
        sampler = Sampler(worker.pid, sink)
        sampler.sample()  # before the first task
        sampler.start()
        start = time.time()
        trigger_draining(4)
        try:
            received = sink.wait(6 * 3600, label="memory run")
        finally:
            sampler.stop.set()
            sampler.join()
        sampler.sample()
    throughput = rates(n, start, received)
    sent = sent_count(ids)

    pids = sorted({pid for _, _, values in sampler.samples for pid in values})
    roles = {pid: ("parent" if pid == worker.pid else "child") for pid in pids}
    per_process = {}
    for pid in pids:
        series = [(t, count, values[pid]) for t, count, values in sampler.samples if pid in values]
        per_process[pid] = {
            "role": roles[pid], "start": round(series[0][2], 1), "peak": round(max(v for *_, v in series), 1),
            "end": round(series[-1][2], 1),
            # RSS when the sink had each tenth of the messages: flat or growing?
            "by_tenth": [round(next((v for _, c, v in series if c >= n * k / 10), series[-1][2]), 1)
                         for k in range(1, 11)],
        }
    result = {"machine": {**info, "loadavg_end": loadavg()}, "emails": n, "dkim": args.dkim,
              "seeding_seconds": round(seeding, 1), "throughput": throughput, "status_sent": sent,
              "processes": per_process, "samples": sampler.samples}
    (VAR / "bench-worker-memory.json").write_text(json.dumps(result, indent=1))

    print(f"\n{info['date']}; nproc {info['nproc']}, Python {info['python']}, PostgreSQL {info['postgresql']}; "
          f"load average {info['loadavg_start']} at start, {result['machine']['loadavg_end']} at end\n")
    print(f"{n} emails ({'DKIM on' if args.dkim else 'DKIM off'}) in {throughput['seconds']:.0f} s "
          f"({throughput['rate']:.0f}/s), {sent} marked sent, {received['unique']} distinct at the sink\n")
    print("| process | RSS at start (MB) | peak (MB) | at end (MB) | RSS at each tenth of the run (MB) |")
    print("|---|---|---|---|---|")
    for pid, p in per_process.items():
        print(f"| {p['role']} (pid {pid}) | {p['start']} | {p['peak']} | {p['end']} | "
              f"{' / '.join(str(v) for v in p['by_tenth'])} |")
    peak = max(p["peak"] for p in per_process.values())
    growth = max(p["by_tenth"][-1] - p["by_tenth"][1] for p in per_process.values())
    print(f"\npeak {peak:.0f} MB (target <= 200 MB each): {'met' if peak <= 200 else 'MISSED'}; "
          f"largest growth from 20% to 100% of the run: {growth:+.1f} MB")


if __name__ == "__main__":
    main()
