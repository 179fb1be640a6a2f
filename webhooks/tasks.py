"""Thin Celery tasks: they take ids and call one function of webhooks/delivery.py."""

from celery import shared_task


@shared_task(name="webhooks.endpoint_deliver", ignore_result=True)
def webhook_endpoint_deliver(endpoint_id: int) -> None:
    from webhooks import delivery

    delivery.endpoint_deliver_due(endpoint_id=endpoint_id)


@shared_task(name="webhooks.sweep", ignore_result=True)
def webhook_sweep() -> None:
    from webhooks import delivery

    delivery.sweep()
