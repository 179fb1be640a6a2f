"""Shared pieces of the benchmarks: a fresh database, an account, servers, wrk."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BENCH_DB = os.environ.get("BENCH_DB_NAME", "mailroom_bench")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def bench_env(**extra) -> dict:
    env = {**os.environ, "DATABASE_URL": f"{PG}/{BENCH_DB}", "REDIS_URL": REDIS_URL,
           "DJANGO_SECRET_KEY": "bench-only", "DJANGO_SETTINGS_MODULE": "bench.settings",
           "MAILROOM_REQUIRE_VERIFIED_DOMAIN": "false", "PYTHONPATH": str(ROOT)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args: str, env: dict | None = None) -> str:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env or bench_env(), check=True,
                          capture_output=True, text=True).stdout


def fresh_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    manage("migrate", "--noinput", "-v0")
    with psycopg.connect(f"{PG}/{BENCH_DB}", autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_insert (id bigserial primary key, body text, created_at timestamptz)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def create_account() -> dict:
    out = manage("create_account", "bench", "--plan", "enterprise", "--rate-limit", "100000000", "--json")
    return json.loads(out)


@contextmanager
def gunicorn(port: int = 8711, workers: int = 2, threads: int = 4):
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         # gthread accepts greedily: one process can take every keep-alive connection wrk opens
         # and serve them all on one core while the other idles. Two connections per thread
         # spreads them evenly; the same for the baseline and the product.
         "--worker-connections", str(2 * threads), "--log-level", "warning"],
        cwd=ROOT, env=bench_env(), start_new_session=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def wrk(url: str, *, body: dict, headers: dict, seconds: int = 15, connections: int = 8,
        threads: int = 2) -> dict:
    """POST ``body`` with wrk; returns requests/s, latency and non-2xx counts."""
    script = ROOT / "var" / "bench-post.lua"
    script.parent.mkdir(exist_ok=True)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0, "p99": p99.group(1) if p99 else "?",
            "raw": out}


def python_version() -> str:
    return sys.version.split()[0]


def insert_select(model, exprs: dict[str, str], source: str, params: list) -> tuple[str, list]:
    """INSERT INTO <model> SELECT ...: given columns from ``exprs``, the rest from field defaults,
    so a seeding script follows schema changes of the apps (bench/analytics_query.py, admin_pages.py)."""
    from django.db import connection

    qn = connection.ops.quote_name
    columns, values, defaults = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(qn(field.column))
        if field.attname in exprs:
            values.append(exprs[field.attname])
        else:
            values.append("%s")
            defaults.append(field.get_db_prep_save(field.get_default(), connection))
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(values)} {source}"
    # the SELECT list's defaults come before the FROM/WHERE parameters
    return sql, defaults + params
