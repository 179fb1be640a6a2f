"""Webhook read paths, always starting from the calling sub-account."""

from accounts.models import SubAccount
from config.api.errors import NotFound
from webhooks.models import WebhookEndpoint, WebhookEvent


def webhook_endpoint_list(*, subaccount: SubAccount):
    return WebhookEndpoint.objects.filter(subaccount=subaccount).order_by("-created_at", "-id")


def webhook_endpoint_get(*, subaccount: SubAccount, endpoint_id: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(subaccount=subaccount, public_id=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint, status: str | None = None, event_type: str | None = None):
    qs = WebhookEvent.objects.filter(endpoint=endpoint)
    if status:
        qs = qs.filter(status=status)
    if event_type:
        qs = qs.filter(event_type=event_type)
    return qs.order_by("-created_at", "-id")


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookEvent:
    event = WebhookEvent.objects.filter(endpoint=endpoint, public_id=delivery_id).prefetch_related("attempts").first()
    if event is None:
        raise NotFound("No such webhook delivery.")
    event.endpoint = endpoint
    return event
