"""Waking the dispatcher after sends: at most one Celery publish per interval per process.

A send's rows are the outbox; all a worker needs is a ``dispatch_due`` task that starts after
the send committed, and one such task claims every due row (a batch at a time, queueing the next
round while claims come back full). So a process publishes at once when it has not for
``INTERVAL``; otherwise its waker thread publishes once at the end of the interval, which by
then follows every commit that asked. Sending costs a lock instead of a Celery publish (about
a millisecond of CPU and a Redis round trip); delivery waits at most ``INTERVAL`` longer.

One long-lived thread per process does the trailing publishes: Celery keeps a result backend
and a producer per thread, and building them for a new thread each time cost more than the
publishes saved.

A process that dies with a publish pending leaves its rows to the sweeper, like any publish
lost after commit (``MAILROOM_SEND_REPUBLISH_AFTER_SECONDS``).
"""

import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)

INTERVAL = 0.05  # seconds


class Waker:
    def __init__(self, publish: Callable[[list[int]], None], interval: float = INTERVAL):
        self._publish = publish
        self._interval = interval
        self._cond = threading.Condition()
        self._last = -interval
        self._pending: list[int] | None = None  # rows waiting for the trailing publish
        self._thread_pid: int | None = None

    def wake(self, email_ids: list[int]) -> None:
        with self._cond:
            now = time.monotonic()
            if self._pending is None and now - self._last >= self._interval:
                self._last = now
            else:
                self._pending = (self._pending or []) + list(email_ids)
                self._ensure_thread()
                self._cond.notify()
                return
        self._publish(list(email_ids))

    def flush(self) -> None:
        """Publish what is pending now, without waiting for the interval (used by tests)."""
        with self._cond:
            email_ids, self._pending = self._pending, None
            self._last = time.monotonic()
        if email_ids is not None:
            self._publish(email_ids)

    def _ensure_thread(self) -> None:
        # Per process: a thread started before a fork does not exist in the child.
        if self._thread_pid != os.getpid():
            self._thread_pid = os.getpid()
            threading.Thread(target=self._run, name="dispatch-waker", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                email_ids, self._pending = self._pending, None
                self._last = time.monotonic()
            if email_ids is None:  # flushed meanwhile
                continue
            try:
                self._publish(email_ids)
            except Exception:  # the publisher logs its own failures; the thread must live on
                logger.exception("Dispatch wake-up failed")
            finally:
                connections.close_all()  # this thread's own, if a failed publish wrote
