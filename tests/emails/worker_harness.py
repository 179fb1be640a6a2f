"""Real processes for the pipeline tests: Celery worker and beat, gunicorn, a private redis-server.

Each process runs in its own session (process group), so one ``os.killpg`` reaches the prefork
children too; every process started here is killed by ``Processes.stop_all`` (a fixture
finalizer) even when the test fails half-way. Output goes to a log file that failure messages
quote.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import redis
import requests
from django.db import connection

from tests.conftest import IN_CI, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Celery's default queue and kombu's bookkeeping for unacknowledged messages (redis transport).
QUEUE_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")


def subprocess_database_url() -> str:
    """The pytest test database (e.g. test_mr_pipe), where a transactional test commits its rows."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(*, redis_url: str, smtp_port: int, var_dir: Path, **extra) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PYTEST_", "CELERY_", "EMAIL_")) and name != "DJANGO_SETTINGS_MODULE"}
    env.update({
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": redis_url,
        "DJANGO_SECRET_KEY": "pipeline-test-not-a-secret",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "10",
        "MAILROOM_REQUIRE_VERIFIED_DOMAIN": "false",
        "MAILROOM_VAR_DIR": str(var_dir),
        "MAILROOM_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        # The code of this checkout, whatever an editable install of the package points at.
        "PYTHONPATH": str(ROOT),
    })
    env.update({name: str(value) for name, value in extra.items()})
    return env


def purge_queues(redis_url: str) -> None:
    """Empty Celery's queue and kombu's unacked set, so no earlier run's task reaches this worker."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = set(QUEUE_KEYS) | {k.decode() for k in client.scan_iter(match="celery\x06\x16*")}
        client.delete(*keys)
    finally:
        client.close()


def live_group_members(pgid: int) -> list[int]:
    """Processes of the group that have not exited. Orphaned prefork children that died stay
    zombies until init reaps them (slowly, on some machines); a zombie holds no socket or
    database connection any more, so it does not count."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class Process:
    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.args, self.log = name, args, log
        self._log_file = log.open("ab")
        # A new session: the worker's prefork children share its process group.
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self.pgid = self.popen.pid

    def output(self, tail: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output(tail=10**6):
                return
            if not self.alive():
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not print {text!r} within {timeout}s:\n{self.output()}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Signal the whole process group and wait until every member is gone."""
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.popen.poll()  # reap the leader
            if not live_group_members(self.pgid):
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"{self.name}: processes {live_group_members(self.pgid)} survived SIGKILL")
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL for whatever is left."""
        if self.alive():
            try:
                os.killpg(self.pgid, signal.SIGTERM)
                self.popen.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


class RedisServer:
    """A private, throw-away redis-server (no persistence) that a test may stop and start."""

    def __init__(self, processes: "Processes"):
        self.processes = processes
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Process | None = None

    @staticmethod
    def executable() -> str | None:
        return shutil.which("redis-server")

    def start(self) -> "RedisServer":
        args = [self.executable(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.processes.tmp)]
        self.process = self.processes.start("redis", args, env=dict(os.environ))
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not start:\n{self.process.output()}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()


class Processes:
    """Starts the real processes of one test and stops all of them at the end."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.started: list[Process] = []

    def start(self, name: str, args: list[str], env: dict) -> Process:
        log = self.tmp / f"{name}-{len(self.started)}.log"
        process = Process(name, args, env, log)
        self.started.append(process)
        return process

    def worker(self, env: dict, *, concurrency: int = 2) -> Process:
        process = self.start("worker", [
            str(BIN / "celery"), "-A", "config", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "--loglevel", "INFO", "--hostname", f"pipe-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ], env)
        # Logged once the pool's children are up and the consumer listens on the queue.
        process.wait_for_output(" ready.", timeout=60)
        return process

    def beat(self, env: dict) -> Process:
        process = self.start("beat", [
            str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(self.tmp / f"beat-schedule-{uuid.uuid4().hex[:8]}"),
        ], env)
        process.wait_for_output("beat: Starting", timeout=60)
        return process

    def web(self, env: dict) -> tuple[Process, str]:
        port = free_port()
        process = self.start("web", [
            str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--threads", "4", "--timeout", "60",
        ], env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=10)  # any answer: it serves requests
                return process, url
            except (requests.ConnectionError, requests.Timeout):
                if not process.alive() or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{process.output()}") from None
                time.sleep(0.1)

    def stop_all(self) -> None:
        # Newest first, but Redis last: a worker that loses its broker at teardown only adds noise.
        for process in sorted(reversed(self.started), key=lambda p: p.name == "redis"):
            process.kill()


def require_redis_server() -> str:
    """The redis-server binary; skipped locally when missing, a failure in CI."""
    import pytest

    path = RedisServer.executable()
    if path:
        return path
    if IN_CI:
        pytest.fail("redis-server is required in CI (the Redis outage test starts its own)")
    pytest.skip("redis-server is not on PATH")
