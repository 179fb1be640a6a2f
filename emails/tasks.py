"""Thin Celery tasks: ids in, one service call."""

import logging

from celery import shared_task

from emails.services import email_dispatch, email_events_fan_out_pending, email_sweep

logger = logging.getLogger(__name__)


def _next_round() -> None:
    """A full claim means a backlog: queue another round for a free worker. A broker outage
    here must not fail the batch; the sweeper finds the backlog."""
    try:
        dispatch_due.delay()
    except Exception:
        logger.warning("Could not publish the next dispatch round; the sweeper will", exc_info=True)


@shared_task(name="emails.dispatch", acks_late=True, reject_on_worker_lost=True)
def dispatch_emails(email_ids: list[int]) -> int:
    # Published by the sweeper, a task per 50 ids it released or republished: no next round,
    # the other ids already have their tasks (and the sweeper runs again within a second).
    return email_dispatch(ids=email_ids)


@shared_task(name="emails.dispatch_due", acks_late=True, reject_on_worker_lost=True)
def dispatch_due() -> int:
    return email_dispatch(ids=None, on_backlog=_next_round)


@shared_task(name="emails.sweep", acks_late=True)
def sweep() -> dict:
    return email_sweep()


@shared_task(name="emails.fan_out", acks_late=True)
def fan_out() -> int:
    return email_events_fan_out_pending()
