"""Thin Celery task: beat runs it every couple of seconds."""

from celery import shared_task

from emails.tracking.hits import tracking_hits_flush_all


@shared_task(name="emails.tracking_flush", acks_late=True)
def tracking_flush() -> int:
    return tracking_hits_flush_all()
