"""Thin Celery tasks: ids in, one service call."""

from celery import shared_task

from emails.services import email_dispatch, email_sweep
from emails.services.dispatch import BATCH_SIZE


@shared_task(name="emails.dispatch", acks_late=True, reject_on_worker_lost=True)
def dispatch_emails(email_ids: list[int]) -> int:
    claimed = email_dispatch(ids=email_ids)
    if claimed >= BATCH_SIZE:
        dispatch_due.delay()  # a full batch means a backlog: keep draining it
    return claimed


@shared_task(name="emails.dispatch_due", acks_late=True, reject_on_worker_lost=True)
def dispatch_due() -> int:
    claimed = email_dispatch(ids=None)
    if claimed >= BATCH_SIZE:
        dispatch_due.delay()
    return claimed


@shared_task(name="emails.sweep", acks_late=True)
def sweep() -> dict:
    return email_sweep()
