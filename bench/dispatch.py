"""Dispatch throughput: emails/s from ``queued`` to accepted by a local SMTP sink.

    .venv/bin/python bench/dispatch.py [--emails 10000] [--no-post-office]

In one invocation, on a fresh database (``mailroom_bench_dispatch``, Redis db 13; override with
``BENCH_DB_NAME`` / ``BENCH_REDIS_URL``):

1. baseline: plain ``smtplib`` pushes the very MIME bytes the pipeline builds for the seeded
   emails over one reused connection to the sink;
2. Mailroom: ``celery -A config worker --concurrency 2`` drains N queued emails (seeded with
   ``email_send_batch`` in-process, enqueue suppressed; draining started by publishing
   ``emails.dispatch_due`` tasks), DKIM off (a sender domain without a key) and on (a domain
   added and verified through ``domains.services`` against a local DNS server); a sample of
   the signed messages is checked with ``dkim.verify``;
3. django-post-office (in its own virtualenv, var/bench-postoffice-venv, and its own database
   ``mailroom_bench_po``): the same N messages queued, then ``send_queued_mail --processes 2``.

The sink is an aiosmtpd server in its own process (``bench/dispatch.py sink``), so it takes no
CPU from the process being measured; it records the receive time of every Message-ID and
reports when N have arrived. Rates are N / (last receive - start), where start is the moment
the sending begins (triggers published, smtplib's first send, post_office's command launched);
"steady" rates, (N - 1) / (last - first receive), leave out start-up costs and are the ones
compared. Prints a Markdown table and writes var/bench-dispatch.json.

The other benchmarks (scheduled_release.py, worker_memory.py) reuse the pieces defined here.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Not send_api.py's mailroom_bench / Redis db 12: two benchmarks sharing them drop each
# other's database and drain each other's queue when they run at the same time.
os.environ.setdefault("BENCH_DB_NAME", "mailroom_bench_dispatch")
# Not 14: that is the Redis db .ci/run gives the test suite.
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

from bench.harness import PG, PYTHON, bench_env, create_account, fresh_database  # noqa: E402

VAR = ROOT / "var"
CELERY = [PYTHON, "-m", "celery"]  # not the console script: it works from any checkout
SEED_CHUNK = 500  # email_send_batch's maximum
DKIM_DOMAIN = "bench-signed.example.com"
PLAIN_DOMAIN = "bench-plain.example.net"
PO_VENV = VAR / "bench-postoffice-venv"
PO_DB = "mailroom_bench_po"

TEXT = ("Hi,\n\nThanks for your order. Your receipt is below.\n\n"
        + "".join(f"  Item {n}: Widget model {n} x 1 ... {n * 3}.00 EUR\n" for n in range(1, 11))
        + "\nTotal: 165.00 EUR\n\nThe Bench Shop\n")
HTML = ("<html><body><p>Hi,</p><p>Thanks for your order. Your receipt is below.</p><table>"
        + "".join(f"<tr><td>Item {n}</td><td>Widget model {n}</td><td>1</td><td>{n * 3}.00 EUR</td></tr>"
                  for n in range(1, 11))
        + "</table><p><b>Total: 165.00 EUR</b></p>"
        + '<p><a href="https://shop.example.com/orders">Your orders</a></p><p>The Bench Shop</p></body></html>')


def email_item(i: int, domain: str) -> dict:
    """The i-th benchmark email, as the API takes it (~2.5 KB of MIME)."""
    return {"from": f"Bench Shop <receipts@{domain}>", "to": f"customer{i}@example.org",
            "subject": f"Your receipt #{100000 + i}", "text": TEXT, "html": HTML, "tags": ["receipt"]}


# --- machine --------------------------------------------------------------------------------

def machine() -> dict:
    import psycopg

    with psycopg.connect(f"{PG}/postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
            "python": sys.version.split()[0], "postgresql": pg, "loadavg_start": loadavg()}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the SMTP sink (its own process) ----------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class _SinkHandler:
    def __init__(self, keep: int, keep_dir: Path):
        self.times: dict[str, float] = {}
        self.received = 0
        self.cpu_at_first = 0.0
        self.keep = keep
        self.keep_dir = keep_dir

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        now = time.time()
        raw = envelope.original_content or envelope.content
        head = raw[:raw.find(b"\r\n\r\n")]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode() if found else f"<none-{self.received}>"
        if not self.received:
            self.cpu_at_first = time.process_time()
        self.received += 1
        self.times.setdefault(message_id, now)
        if self.received <= self.keep:
            (self.keep_dir / f"{self.received}.eml").write_bytes(raw)
        return "250 2.0.0 Ok: queued"


def sink_main(port: int, expect: int, out: Path, keep: int) -> None:
    """Runs in the sink process: prints ``ready``, ``count N`` lines, then ``done``."""
    from aiosmtpd.controller import Controller

    keep_dir = out.with_suffix(".samples")
    keep_dir.mkdir(parents=True, exist_ok=True)
    for old in keep_dir.glob("*.eml"):
        old.unlink()
    handler = _SinkHandler(keep, keep_dir)
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=64 * 1024 * 1024)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def dump() -> None:
        times = sorted(handler.times.values())
        out.write_text(json.dumps({"received": handler.received, "unique": len(handler.times),
                                   "first": times[0] if times else None, "last": times[-1] if times else None,
                                   "cpu_seconds": time.process_time() - handler.cpu_at_first,
                                   "times": handler.times}))

    print("ready", flush=True)
    reported, done = -1, False
    while not stop.wait(0.25):
        if handler.received != reported:
            reported = handler.received
            print(f"count {reported}", flush=True)
        if not done and len(handler.times) >= expect:
            done = True
            dump()
            print("done", flush=True)
    dump()
    controller.stop()


class Sink:
    """The parent's handle on a sink process (one per measurement, all on the same port)."""

    def __init__(self, port: int, expect: int, name: str, keep: int = 0):
        self.port, self.expect, self.name = port, expect, name
        self.out = VAR / f"bench-sink-{name}.json"
        self.out.unlink(missing_ok=True)
        self.count = 0
        self.done = threading.Event()
        self.proc = subprocess.Popen(
            [PYTHON, __file__, "sink", "--port", str(port), "--expect", str(expect), "--out", str(self.out),
             "--keep", str(keep)], stdout=subprocess.PIPE, text=True, start_new_session=True)
        ready = self.proc.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"the sink did not start: {ready!r}")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("count "):
                self.count = int(line.split()[1])
            elif line.strip() == "done":
                self.done.set()

    def wait(self, timeout: float, *, label: str = "") -> dict:
        """Waits for N messages, printing progress; raises on a stall of 120 s."""
        deadline, last_count, last_change = time.time() + timeout, -1, time.time()
        while not self.done.wait(5):
            if self.count != last_count:
                last_count, last_change = self.count, time.time()
                print(f"  {label or self.name}: {self.count}/{self.expect} at the sink", flush=True)
            if time.time() > deadline or time.time() - last_change > 120:
                self.stop()
                raise RuntimeError(f"{self.name}: only {self.count} of {self.expect} messages arrived")
        return self.stop()

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return json.loads(self.out.read_text())

    def samples(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.out.with_suffix(".samples").glob("*.eml"))]


# --- Django in this process (seeding, building, checking) -------------------------------------

def sink_env(sink_port: int) -> dict:
    return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": sink_port, "EMAIL_TIMEOUT": 30, "MAILROOM_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": 1}


def bench_subaccount(keys: dict):
    from accounts.models import SubAccount

    return SubAccount.objects.select_related("account__plan").get(public_id=keys["subaccount_id"])


def start_run(**env) -> tuple[dict, dict, object]:
    """What every benchmark run starts with: machine facts, a fresh database with a bench
    account, Django set up in this process with ``env`` added; (info, keys, subaccount)."""
    VAR.mkdir(exist_ok=True)
    info = machine()
    fresh_database()
    keys = create_account()
    os.environ.update(bench_env(**env))
    import django

    django.setup()
    return info, keys, bench_subaccount(keys)


def prepare_run() -> tuple[dict, int, dict, object]:
    """``start_run`` for the sending benchmarks, with Django's SMTP backend pointed at a free
    port for the sink; (info, port, keys, subaccount)."""
    port = free_port()
    info, keys, subaccount = start_run(**sink_env(port))
    return info, port, keys, subaccount


def signed_domain(subaccount) -> dict:
    """Adds DKIM_DOMAIN and verifies it through the domains services, with its records served
    by a local DNS server; returns {record name: TXT value} for dkim.verify."""
    from django.conf import settings

    from domains import records
    from domains.models import DomainStatus
    from domains.services import domain_add, domain_verify
    from tests.dns_server import LocalDnsServer

    server = LocalDnsServer().start()
    try:
        settings.DNS_NAMESERVERS = [server.address]
        domain = domain_add(subaccount=subaccount, domain=DKIM_DOMAIN)
        published = records.dns_records(domain)
        server.publish(published)
        domain = domain_verify(domain=domain)
        if domain.status != DomainStatus.VERIFIED:
            raise RuntimeError(f"{DKIM_DOMAIN} did not verify: {domain.last_error}")
    finally:
        server.stop()
    return {r["name"]: r["value"] for r in published if r["type"] == "TXT"}


def seed(subaccount, n: int, *, domain: str, start: int = 0, scheduled_at=None) -> list[int]:
    """Accepts n live emails through ``email_send_batch`` (500 per call) without publishing
    dispatch tasks; ``scheduled_at(i)`` makes them scheduled. Returns their ids."""
    from emails.models import Email
    from emails.services import accept

    publish, wake = accept.enqueue_dispatch, accept.dispatch_wake
    accept.enqueue_dispatch = accept.dispatch_wake = lambda ids: None  # the benchmark starts the draining itself
    ids: list[int] = []
    try:
        for chunk in range(start, start + n, SEED_CHUNK):
            items = []
            for i in range(chunk, min(chunk + SEED_CHUNK, start + n)):
                item = email_item(i, domain)
                if scheduled_at is not None:
                    item["scheduled_at"] = scheduled_at(i).isoformat()
                items.append(item)
            results = accept.email_send_batch(subaccount=subaccount, environment="live", items=items)
            errors = [r for r in results if "error" in r]
            if errors:
                raise RuntimeError(f"seeding failed: {errors[:3]}")
            ids += Email.objects.filter(public_id__in=[r["id"] for r in results]).values_list("pk", flat=True)
            if (chunk - start) % 10_000 == 0 and chunk > start:
                print(f"  seeded {chunk - start}", flush=True)
    finally:
        accept.enqueue_dispatch, accept.dispatch_wake = publish, wake
    assert len(ids) == n
    return ids


def built_messages(ids: list[int]) -> list[tuple[str, list[str], bytes]]:
    """(envelope from, recipients, MIME bytes) exactly as the worker builds them (signed when
    the domain has a key), for the smtplib baseline and the post_office comparison."""
    from emails.models import Email
    from emails.services.dispatch import build_message

    messages = []
    for start in range(0, len(ids), 1000):
        for email in (Email.objects.filter(pk__in=ids[start:start + 1000]).order_by("pk")
                      .prefetch_related("recipients", "attachments")):
            message = build_message(email)
            messages.append((email.from_address, message.recipients(), message.message().as_bytes()))
    return messages


def sent_count(ids: list[int]) -> int:
    from emails.models import Email, EmailStatus

    return Email.objects.filter(pk__in=ids, status=EmailStatus.SENT).count()


def trigger_draining(rounds: int) -> None:
    """What a backlog looks like to the workers: ``dispatch_due`` tasks, each claiming a batch (MAILROOM_DISPATCH_BATCH_SIZE) and
    publishing the next round while it finds a full batch."""
    from config.celery import app  # noqa: F401 - the app configured from the bench settings
    from emails.tasks import dispatch_due

    for _ in range(rounds):
        dispatch_due.delay()


def purge_broker() -> None:
    import redis

    from bench.harness import REDIS_URL

    redis.Redis.from_url(REDIS_URL).flushdb()


# --- real worker processes --------------------------------------------------------------------

@contextmanager
def celery_processes(sink_port: int, *, concurrency: int = 2, beat: bool = False, name: str = "dispatch"):
    """``celery -A config worker --concurrency N`` (+ ``celery beat``) against the bench database
    and Redis, the SMTP backend pointed at the sink; yields the worker's Popen once it is ready."""
    env = bench_env(**{**sink_env(sink_port), "MAILROOM_LOG_LEVEL": "INFO"})
    env.pop("DJANGO_SETTINGS_MODULE")  # the product's own settings, as the Procfile runs it
    log = VAR / f"bench-{name}-worker.log"
    procs = []
    with open(log, "w") as worker_log:
        worker = subprocess.Popen(
            [*CELERY, "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", str(concurrency),
             "--hostname", f"bench-{name}@%h"],
            cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(worker)
        try:
            deadline = time.time() + 60
            while " ready." not in log.read_text():
                if worker.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the worker did not start; see {log}")
                time.sleep(0.2)
            if beat:
                schedule = VAR / f"bench-{name}-celerybeat-schedule"
                for old in VAR.glob(f"bench-{name}-celerybeat-schedule*"):
                    old.unlink()
                procs.append(subprocess.Popen(
                    [*CELERY, "-A", "config", "beat", "--loglevel", "WARNING", "--schedule", str(schedule)],
                    cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
            yield worker
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


# --- the measurements -------------------------------------------------------------------------

def rates(n: int, start: float, result: dict, *, sender_cpu: float | None = None) -> dict:
    """Rates from the sink's record; CPU per email (ms) of the sender's processes and the sink."""
    total = result["last"] - start
    steady = result["last"] - result["first"]
    return {"emails": n, "seconds": round(total, 2), "rate": round(n / total, 1),
            "steady_seconds": round(steady, 2), "steady_rate": round((n - 1) / steady, 1) if steady > 0 else None,
            "received": result["received"], "unique": result["unique"],
            "sender_cpu_ms": round(sender_cpu / n * 1000, 2) if sender_cpu is not None else None,
            "sink_cpu_ms": round(result["cpu_seconds"] / n * 1000, 2), "loadavg": loadavg()}


def smtplib_push(port: int, messages: list[tuple[str, list[str], bytes]], name: str) -> dict:
    import smtplib

    sink = Sink(port, len(messages), name)
    start, cpu = time.time(), time.process_time()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for mail_from, rcpts, raw in messages:
            client.sendmail(mail_from, rcpts, raw)
    cpu = time.process_time() - cpu
    return rates(len(messages), start, sink.wait(600, label=name), sender_cpu=cpu)


def mailroom_dispatch(port: int, worker, ids: list[int], name: str, *, keep: int = 0, concurrency: int = 2):
    sink = Sink(port, len(ids), name, keep=keep)
    pids = [worker.pid, *child_pids(worker.pid)]
    cpu = {pid: cpu_seconds(pid) for pid in pids}
    start = time.time()
    trigger_draining(2 * concurrency)
    received = sink.wait(1800, label=name)
    used = sum(cpu_seconds(pid) - before for pid, before in cpu.items())
    result = rates(len(ids), start, received, sender_cpu=used)
    result["status_sent"] = sent_count(ids)
    return result, sink.samples()


def verify_signatures(samples: list[bytes], txt: dict[str, str]) -> str:
    import dkim

    def dnsfunc(name, timeout=5):
        value = txt.get(name.decode().rstrip(".").lower())
        return value.encode() if value else None

    if not samples:
        return "no samples"
    verified = sum(1 for raw in samples if raw.startswith(b"DKIM-Signature:") and dkim.verify(raw, dnsfunc=dnsfunc))
    return f"{verified}/{len(samples)} sampled messages carry a DKIM-Signature that dkim.verify accepts"


# --- django-post-office, in its own virtualenv ------------------------------------------------

def post_office_env(port: int) -> dict:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "bench.post_office.settings", "PO_DATABASE_URL": f"{PG}/{PO_DB}",
            "PO_EMAIL_PORT": str(port)}


def post_office_install() -> str | None:
    """Creates var/bench-postoffice-venv; returns None when it works, else why not."""
    python = PO_VENV / "bin" / "python"
    marker = PO_VENV / ".installed"
    if marker.exists():
        return None
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PO_VENV)], check=True)
    try:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "django==5.2.*", "django-post-office",
                        "psycopg[binary]"], check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as exc:
        return f"pip install failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}"
    except subprocess.TimeoutExpired:
        return "pip install timed out"
    marker.write_text("ok\n")
    return None


def post_office_version() -> str:
    python = str(PO_VENV / "bin" / "python")
    out = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('django-post-office'), "
                          "m.version('django'))"], capture_output=True, text=True, check=True).stdout.split()
    return f"django-post-office {out[0]} on Django {out[1]}"


def post_office_run(port: int, n: int, domain: str) -> dict:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PO_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PO_DB}"')
    python = str(PO_VENV / "bin" / "python")
    env = post_office_env(port)
    subprocess.run([python, "-m", "django", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "-m", "bench.post_office.seed", "--emails", str(n), "--domain", domain],
                   cwd=ROOT, env=env, check=True)
    sink = Sink(port, n, "post-office")
    lockfile = VAR / "bench-post-office"
    start = time.time()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    sender = subprocess.Popen([python, "-m", "django", "send_queued_mail", "--processes", "2", "--lockfile",
                               str(lockfile)], cwd=ROOT, env=env, start_new_session=True)
    try:
        received = sink.wait(3600, label="post_office")
    finally:
        sender.wait(timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The command and its pool processes, start-up included (it exits when the queue is empty).
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return rates(n, start, received, sender_cpu=used)


# --- main -------------------------------------------------------------------------------------

def row(label: str, r: dict, base: dict | None) -> str:
    vs = f"{r['steady_rate'] / base['steady_rate']:.0%}" if base else "-"
    return (f"| {label} | {r['emails']} | {r['seconds']} | {r['rate']:.0f} | {r['steady_rate']:.0f} | {vs} | "
            f"{r['sender_cpu_ms']} | {r['sink_cpu_ms']} | {r['loadavg'].split()[0]} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--no-post-office", action="store_true")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (the target is for 2)")
    args = parser.parse_args()
    n = args.emails
    info, port, _keys, subaccount = prepare_run()
    txt = signed_domain(subaccount)
    results: dict = {"machine": info, "concurrency": args.concurrency}

    print(f"seeding {n} emails from {PLAIN_DOMAIN} (no DKIM key)", flush=True)
    plain_ids = seed(subaccount, n, domain=PLAIN_DOMAIN)
    plain_messages = built_messages(plain_ids)
    results["smtplib_plain"] = smtplib_push(port, plain_messages, "smtplib-plain")
    print(f"  smtplib: {results['smtplib_plain']}", flush=True)
    purge_broker()
    with celery_processes(port, name="dispatch", concurrency=args.concurrency) as worker:
        results["mailroom_plain"], _ = mailroom_dispatch(port, worker, plain_ids, "mailroom-plain",
                                                         concurrency=args.concurrency)
        print(f"  mailroom, DKIM off: {results['mailroom_plain']}", flush=True)

        print(f"seeding {n} emails from {DKIM_DOMAIN} (verified, DKIM key)", flush=True)
        signed_ids = seed(subaccount, n, domain=DKIM_DOMAIN, start=n)
        signed_messages = built_messages(signed_ids)
        results["smtplib_signed"] = smtplib_push(port, signed_messages, "smtplib-signed")
        print(f"  smtplib (signed bytes): {results['smtplib_signed']}", flush=True)
        results["mailroom_signed"], samples = mailroom_dispatch(port, worker, signed_ids, "mailroom-signed",
                                                                keep=20, concurrency=args.concurrency)
        results["dkim_check"] = verify_signatures(samples, txt)
        print(f"  mailroom, DKIM on: {results['mailroom_signed']}; {results['dkim_check']}", flush=True)
        (VAR / "bench-dispatch.json").write_text(json.dumps(results, indent=2))  # kept if post_office fails

    results["mime_bytes_plain"] = sum(len(m[2]) for m in plain_messages) // n
    results["mime_bytes_signed"] = sum(len(m[2]) for m in signed_messages) // n
    if args.no_post_office:
        results["post_office"] = {"skipped": "--no-post-office"}
    else:
        problem = post_office_install()
        if problem:
            results["post_office"] = {"skipped": problem}
        else:
            results["post_office"] = post_office_run(port, n, PLAIN_DOMAIN)
            results["post_office"]["version"] = post_office_version()
    results["machine"]["loadavg_end"] = loadavg()

    base_plain, base_signed = results["smtplib_plain"], results["smtplib_signed"]
    print(f"\n{info['date']}; nproc {info['nproc']}, Python {info['python']}, PostgreSQL {info['postgresql']}; "
          f"load average {info['loadavg_start']} at start, {results['machine']['loadavg_end']} at end\n")
    print("| sender | emails | seconds (start to last) | emails/s | steady emails/s | vs smtplib (steady) | "
          "sender CPU ms/email | sink CPU ms/email | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(row("baseline: smtplib, one connection, unsigned MIME", base_plain, None))
    print(row(f"Mailroom, {args.concurrency} worker processes, DKIM off", results["mailroom_plain"], base_plain))
    print(row("baseline: smtplib, one connection, signed MIME", base_signed, None))
    print(row(f"Mailroom, {args.concurrency} worker processes, DKIM on", results["mailroom_signed"], base_signed))
    po = results["post_office"]
    if "skipped" in po:
        print(f"| django-post-office | skipped: {po['skipped']} | | | | | | | |")
    else:
        print(row(f"{po['version']}, send_queued_mail --processes 2", po, base_plain))
    print()
    plain_ratio = results["mailroom_plain"]["steady_rate"] / base_plain["steady_rate"]
    signed_ratio = results["mailroom_signed"]["steady_rate"] / base_signed["steady_rate"]
    print(f"DKIM off: {plain_ratio:.0%} of smtplib (target >= 40%): {'met' if plain_ratio >= 0.4 else 'MISSED'}")
    print(f"DKIM on: {signed_ratio:.0%} of smtplib (target >= 40%): {'met' if signed_ratio >= 0.4 else 'MISSED'}")
    if "skipped" not in po:
        po_ratio = results["mailroom_plain"]["steady_rate"] / po["steady_rate"]
        results["vs_post_office"] = round(po_ratio, 2)
        print(f"vs django-post-office (DKIM off, unsigned both): {po_ratio:.1f}x (target >= 2x): "
              f"{'met' if po_ratio >= 2 else 'MISSED'}")
    print(results["dkim_check"])
    (VAR / "bench-dispatch.json").write_text(json.dumps(results, indent=2))


def cli() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sink":
        parser = argparse.ArgumentParser()
        parser.add_argument("sink")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--expect", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--keep", type=int, default=0)
        args = parser.parse_args()
        sink_main(args.port, args.expect, args.out, args.keep)
    else:
        main()


if __name__ == "__main__":
    cli()
