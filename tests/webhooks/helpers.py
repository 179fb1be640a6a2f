from datetime import timedelta

from django.utils import timezone

from webhooks import delivery
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.signing import secret_generate


def make_endpoint(subaccount, url: str, *, events=None, secret: str | None = None, **extra) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(subaccount=subaccount, url=url, events=events or [],
                                          secret=secret or secret_generate(), **extra)


def deliver_due(endpoint: WebhookEndpoint) -> None:
    """What the Celery task does (the task is a one-line wrapper around this)."""
    delivery.endpoint_deliver_due(endpoint_id=endpoint.pk)


def make_due(event: WebhookEvent) -> None:
    """The controllable clock: the retry's time has come."""
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
