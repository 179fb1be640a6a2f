"""Tenant webhooks: endpoints, one delivery row per (event, endpoint), every attempt kept.

The database is the source of truth for delivery: a ``WebhookEvent`` row is ``pending`` until
an attempt gets a 2xx (``succeeded``) or the schedule is exhausted (``failed``); when it is due
is ``next_attempt_at``, swept by beat (DESIGN section 5).
"""

from django.db import models

from config.ids import PublicIdField


class EventType(models.TextChoices):
    EMAIL_QUEUED = "email.queued"
    EMAIL_SCHEDULED = "email.scheduled"
    EMAIL_SENT = "email.sent"
    EMAIL_DELIVERED = "email.delivered"
    EMAIL_DELIVERY_DELAYED = "email.delivery_delayed"
    EMAIL_BOUNCED = "email.bounced"
    EMAIL_COMPLAINED = "email.complained"
    EMAIL_OPENED = "email.opened"
    EMAIL_CLICKED = "email.clicked"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed"
    EMAIL_FAILED = "email.failed"
    EMAIL_CANCELLED = "email.cancelled"
    EMAIL_SUPPRESSED = "email.suppressed"
    DOMAIN_VERIFIED = "domain.verified"
    DOMAIN_FAILED = "domain.failed"
    # Sent only by POST /webhooks/{id}/test, whatever the endpoint's filter.
    WEBHOOK_TEST = "webhook.test"


# What an endpoint may subscribe to (the test event is not subscribable: it is always sent).
SUBSCRIBABLE_EVENT_TYPES = tuple(t.value for t in EventType if t != EventType.WEBHOOK_TEST)


class DisabledReason(models.TextChoices):
    NONE = "", "-"
    MANUAL = "manual", "Disabled by the tenant"
    GONE = "gone", "The endpoint answered 410 Gone"
    FAILING = "failing", "Every delivery failed for 5 days"
    OPERATOR = "operator", "Disabled by an operator"


class WebhookEndpoint(models.Model):
    public_id = PublicIdField(prefix="whk")
    subaccount = models.ForeignKey(
        "accounts.SubAccount", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2048)
    # Event types this endpoint receives; empty means all.
    events = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # ``whsec_`` + base64 of 24-64 random bytes. Stored in clear: HMAC signing needs the key.
    secret = models.CharField(max_length=128)
    # During a rotation the old secret signs too (both signatures sent) until it expires.
    previous_secret = models.CharField(max_length=128, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # First failure since the last success (or creation); cleared by any 2xx. Drives the
    # 5-day disable rule.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    # Set when the account was emailed about an automatic disable: the admin-visible flag.
    account_notified_at = models.DateTimeField(null=True, blank=True)
    # One delivery worker per endpoint at a time (see webhooks/delivery.py): a slow receiver
    # holds at most one worker slot, so it cannot delay the other endpoints.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subaccount", "enabled"], name="webhook_endpoint_sub_enabled")]

    def __str__(self) -> str:
        return f"{self.url} ({self.public_id})"

    @property
    def auto_disabled(self) -> bool:
        return not self.enabled and self.disabled_reason in (DisabledReason.GONE, DisabledReason.FAILING)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    """One event for one endpoint (a "delivery" in the API). Its ``public_id`` is the
    ``webhook-id`` header: stable across retries so receivers can deduplicate."""

    public_id = PublicIdField(prefix="whd")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64)
    # The exact JSON text sent (and signed) on every attempt.
    body = models.TextField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Position in the retry schedule: failed attempts since the delivery was (re)queued. A manual
    # retry or a recover resets it; a test event starts at the end (one attempt, no retries).
    schedule_step = models.PositiveSmallIntegerField(default=0)
    # Due time while pending (also the claim lease while an attempt is in flight); null when done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_event_endpoint_created"),
            models.Index(fields=["endpoint", "status", "created_at"], name="webhook_event_ep_status"),
            # The sweeper's and the claim's queries: only pending rows are indexed.
            models.Index(fields=["next_attempt_at"], name="webhook_event_due",
                         condition=models.Q(status="pending")),
            models.Index(fields=["endpoint", "next_attempt_at"], name="webhook_event_endpoint_due",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint_id} ({self.public_id})"


class WebhookAttempt(models.Model):
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    # The webhook-timestamp header of this attempt (new on every attempt).
    webhook_timestamp = models.BigIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True, default="", help_text="First 1 KB of the response.")
    error = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)
    # The address actually connected to (after the SSRF check).
    remote_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.event_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S} -> {self.status_code or self.error}"
