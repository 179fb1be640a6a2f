"""Waking the dispatcher after single sends: at most one Celery publish per interval per process.

A send's rows are the outbox; all a worker needs is a ``dispatch_due`` task that starts after
the send committed, and one such task claims every due row (50 at a time, queueing another
round while batches come back full). So a process publishes at once when it has not for
``INTERVAL``, and otherwise arms one trailing publish at the end of the interval, which by
then follows every commit that asked. Sending costs a lock instead of a Celery publish (about
a millisecond of CPU, a Redis round trip); delivery waits at most ``INTERVAL`` longer.

A process that dies with a trailing publish armed leaves its rows to the sweeper, like any
publish lost after commit (``MAILROOM_SEND_REPUBLISH_AFTER_SECONDS``).
"""

import logging
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
        self._lock = threading.Lock()
        self._last = -interval
        self._timer: threading.Timer | None = None
        self._waiting: list[int] = []  # rows of the armed publish, for the sweeper if it fails

    def wake(self, email_ids: list[int]) -> None:
        with self._lock:
            if self._timer is not None:  # armed: it fires after this commit
                self._waiting.extend(email_ids)
                return
            now = time.monotonic()
            wait = self._last + self._interval - now
            if wait > 0:
                self._waiting = list(email_ids)
                self._timer = threading.Timer(wait, self._trailing)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = now
        self._publish(list(email_ids))

    def _trailing(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            email_ids, self._waiting = self._waiting, []
        try:
            self._publish(email_ids)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()  # the timer thread's own, if publishing failed and wrote

    def flush(self) -> None:
        """Fire an armed publish now (tests, shutdown)."""
        with self._lock:
            timer = self._timer
        if timer is not None:
            timer.cancel()
            self._trailing()
