"""Thin Celery tasks: ids in, one service call."""

import logging

from celery import shared_task

from emails.services import email_dispatch, email_events_fan_out_pending, email_sweep
from emails.services.dispatch import BATCH_SIZE

logger = logging.getLogger(__name__)


def _continue_draining(claimed: int) -> None:
    """A full batch means a backlog: queue another round. The batch is already delivered and
    recorded, so a broker outage here must not fail the task; the sweeper finds the backlog."""
    if claimed < BATCH_SIZE:
        return
    try:
        dispatch_due.delay()
    except Exception:
        logger.warning("Could not publish the next dispatch round; the sweeper will", exc_info=True)


@shared_task(name="emails.dispatch", acks_late=True, reject_on_worker_lost=True)
def dispatch_emails(email_ids: list[int]) -> int:
    claimed = email_dispatch(ids=email_ids)
    _continue_draining(claimed)
    return claimed


@shared_task(name="emails.dispatch_due", acks_late=True, reject_on_worker_lost=True)
def dispatch_due() -> int:
    claimed = email_dispatch(ids=None)
    _continue_draining(claimed)
    return claimed


@shared_task(name="emails.sweep", acks_late=True)
def sweep() -> dict:
    return email_sweep()


@shared_task(name="emails.fan_out", acks_late=True)
def fan_out() -> int:
    return email_events_fan_out_pending()
