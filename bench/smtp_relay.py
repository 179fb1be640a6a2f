"""SMTP relay throughput: messages/s accepted over 4 concurrent authenticated connections.

    .venv/bin/python bench/smtp_relay.py [--connections 4] [--messages 500]

In one invocation, on a fresh database (``mailroom_bench_relay``, Redis db 10; override with
``BENCH_DB_NAME`` / ``BENCH_REDIS_URL``):

1. baseline: a bare aiosmtpd server that accepts any AUTH and discards every message
   (``bench/smtp_relay.py sink``, its own process);
2. Mailroom: ``python manage.py smtp_relay --host 127.0.0.1 --port P`` (plaintext AUTH allowed
   on loopback with ``SMTP_RELAY_ALLOW_PLAINTEXT_AUTH=true``), once with one process and once
   with ``--processes 2``; a live SMTP credential (``MAILROOM_REQUIRE_VERIFIED_DOMAIN=false``,
   an operator rate limit high enough never to answer 421).

The client is the same for each: C threads, each with one ``smtplib`` connection that says
EHLO and AUTHs once, then sends M distinct pre-built messages (the ~2.5 KB receipt of
bench/dispatch.py, text + HTML) one after another; the clock starts when every connection is
authenticated and stops at the last 250. Every Mailroom run is checked against the database
(one stored email per message). No worker runs: the dispatch tasks the relay publishes wait in
Redis db 10 and are dropped with it. Prints a Markdown table and writes var/bench-relay.json.
"""

import argparse
import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Own database and Redis db: other benchmarks drop theirs and drain their queues. Never 14 (CI).
os.environ.setdefault("BENCH_DB_NAME", "mailroom_bench_relay")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

from bench.dispatch import (  # noqa: E402
    HTML,
    PLAIN_DOMAIN,
    PYTHON,
    TEXT,
    VAR,
    child_pids,
    cpu_seconds,
    free_port,
    loadavg,
    start_run,
)
from bench.harness import bench_env  # noqa: E402

# --- the baseline sink (its own process) --------------------------------------------------------


def sink_main(port: int) -> None:
    import logging
    import warnings

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    # aiosmtpd's deprecation notice about the authenticator's login_data, once per AUTH.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Discard:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            return "250 2.0.0 Ok: discarded"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port,
                            authenticator=lambda *args: AuthResult(success=True), auth_require_tls=False)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


# --- the client ---------------------------------------------------------------------------------

def messages(connection: int, count: int) -> list[tuple[str, list[str], bytes]]:
    out = []
    for i in range(count):
        n = connection * 1_000_000 + i
        msg = EmailMessage()
        msg["From"] = f"Bench Shop <receipts@{PLAIN_DOMAIN}>"
        msg["To"] = f"customer{n}@example.org"
        msg["Subject"] = f"Your receipt #{100000 + n}"
        msg["Message-ID"] = make_msgid(domain=PLAIN_DOMAIN)
        msg["X-Mailroom-Tags"] = "receipt"
        msg.set_content(TEXT)
        msg.add_alternative(HTML, subtype="html")
        out.append((f"receipts@{PLAIN_DOMAIN}", [f"customer{n}@example.org"], msg.as_bytes(policy=SMTP)))  # CRLF line ends, as on the wire
    return out


def push(port: int, username: str, password: str, connections: int, per_connection: int) -> dict:
    """C authenticated connections, M messages each; the clock runs from the moment all are
    authenticated to the last 250."""
    batches = [messages(c, per_connection) for c in range(connections)]
    ready = threading.Barrier(connections + 1)
    ends: list[float] = [0.0] * connections
    errors: list[str] = []

    def client(c: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.ehlo("bench.example")
                smtp.login(username, password)
                ready.wait()
                for mail_from, rcpts, raw in batches[c]:
                    smtp.sendmail(mail_from, rcpts, raw)
                ends[c] = time.time()
        except Exception as exc:  # reported below; the barrier must not hang the others
            errors.append(f"connection {c}: {exc!r}")
            ready.abort()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(connections)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.time()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    n = connections * per_connection
    seconds = max(ends) - start
    return {"messages": n, "seconds": round(seconds, 2), "rate": round(n / seconds, 1), "loadavg": loadavg()}


# --- servers ------------------------------------------------------------------------------------

def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on {port} exited with {proc.returncode}")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as smtp:
                smtp.noop()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in [pid, *child_pids(pid)])


def baseline(connections: int, per_connection: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([PYTHON, __file__, "sink", "--port", str(port)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the sink did not start")
        before = cpu_seconds(proc.pid)
        result = push(port, "anyone", "anything", connections, per_connection)
        result["server_cpu_ms"] = round((cpu_seconds(proc.pid) - before) / result["messages"] * 1000, 3)
        return result
    finally:
        stop(proc)


def relay(processes: int, username: str, password: str, connections: int, per_connection: int) -> dict:
    port = free_port()
    log = VAR / f"bench-relay-{processes}.log"
    env = bench_env(SMTP_RELAY_ALLOW_PLAINTEXT_AUTH="true", MAILROOM_LOG_LEVEL="WARNING")
    env.pop("DJANGO_SETTINGS_MODULE")  # the product's own settings, as the Procfile runs it
    with open(log, "w") as out:
        proc = subprocess.Popen([PYTHON, "manage.py", "smtp_relay", "--host", "127.0.0.1", "--port", str(port),
                                 "--processes", str(processes)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, proc)
        time.sleep(1.0)  # every process of a --processes N set listening
        before = tree_cpu(proc.pid)
        result = push(port, username, password, connections, per_connection)
        result["server_cpu_ms"] = round((tree_cpu(proc.pid) - before) / result["messages"] * 1000, 3)
        return result
    finally:
        stop(proc)


def stored_emails(subaccount) -> int:
    from emails.models import Email

    return Email.objects.filter(subaccount=subaccount).count()


def row(label: str, r: dict, base: dict | None) -> str:
    ratio = f"{r['rate'] / base['rate']:.0%}" if base else "-"
    stored = r.get("stored", "-")
    return (f"| {label} | {r['messages']} | {r['seconds']} | {r['rate']:.0f} | {ratio} | {stored} | "
            f"{r['server_cpu_ms']} | {r['loadavg'].split()[0]} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=500, help="per connection")
    args = parser.parse_args()
    c, m = args.connections, args.messages
    info, _, subaccount = start_run(MAILROOM_LOG_LEVEL="WARNING")
    print(f"machine: {info}", flush=True)
    from emails.relay.credentials import smtp_credential_create

    credential, password = smtp_credential_create(subaccount=subaccount, environment="live", name="bench",
                                                  rate_limit=100_000_000, operator=True)
    results: dict = {"machine": info, "connections": c, "per_connection": m}
    print("baseline: bare aiosmtpd sink", flush=True)
    results["baseline"] = baseline(c, m)
    stored = 0
    for processes in (1, 2):
        print(f"Mailroom relay, --processes {processes}", flush=True)
        r = relay(processes, credential.username, password, c, m)
        now = stored_emails(subaccount)
        r["stored"], stored = now - stored, now
        results[f"relay{processes}"] = r
    info["loadavg_end"] = loadavg()
    (VAR / "bench-relay.json").write_text(json.dumps(results, indent=2, default=str))

    base = results["baseline"]
    print(f"\nRun {info['date']} (load average {info['loadavg_start']} at start, {info['loadavg_end']} at end), "
          f"{c} connections x {m} messages:\n")
    print("| server | messages | seconds | messages/s | vs baseline | emails stored | server CPU ms/message "
          "| load (1 min) |")
    print("|---|---|---|---|---|---|---|---|")
    print(row("baseline: bare aiosmtpd sink (accept any AUTH, discard)", base, None))
    print(row("Mailroom `smtp_relay`, 1 process", results["relay1"], base))
    print(row("Mailroom `smtp_relay --processes 2`", results["relay2"], base))
    best = max(results["relay1"]["rate"], results["relay2"]["rate"])
    print(f"\nbest {best:.0f} messages/s (target >= 200/s): {'met' if best >= 200 else 'missed'}")


def cli() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sink":
        parser = argparse.ArgumentParser()
        parser.add_argument("sink")
        parser.add_argument("--port", type=int, required=True)
        sink_main(parser.parse_args().port)
    else:
        main()


if __name__ == "__main__":
    cli()
