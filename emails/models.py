from django.db import models

from accounts.models import Account, Environment, SubAccount
from config.ids import PublicIdField


class EmailStatus(models.TextChoices):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    DELIVERY_DELAYED = "delivery_delayed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Email(models.Model):
    """One accepted email. The row is the outbox: the pipeline works from it, never from the broker."""

    public_id = PublicIdField(prefix="msg")
    # No index of their own: email_account_env_created and email_sub_created lead with them
    # (every index is paid for by every send).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="emails", db_index=False)
    environment = models.CharField(max_length=4, choices=Environment.choices, default=Environment.LIVE)
    status = models.CharField(max_length=16, choices=EmailStatus.choices, default=EmailStatus.QUEUED)

    from_header = models.CharField(max_length=512, help_text="As given, display name included.")
    from_address = models.CharField(max_length=320)
    from_domain = models.CharField(max_length=255)  # indexed below, without a LIKE index
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    html = models.TextField(null=True, blank=True)
    text = models.TextField(null=True, blank=True)
    # The HTML as the sender gave it (after template rendering) when tracking rewrote ``html``;
    # resend starts from it. Null: ``html`` is the sender's own.
    source_html = models.TextField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # ",tag1,tag2," so a tag filter is one portable LIKE, on SQLite and PostgreSQL alike.
    tags_index = models.CharField(max_length=700, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    template_id = models.CharField(max_length=40, blank=True, default="")
    template_version = models.PositiveIntegerField(null=True, blank=True)
    track_opens = models.BooleanField(default=False)
    track_clicks = models.BooleanField(default=False)
    unsubscribe = models.BooleanField(default=False)

    message_id = models.CharField(max_length=300, blank=True, help_text="RFC 5322 Message-ID, stable across retries.")
    provider_message_id = models.CharField(max_length=300, blank=True)  # indexed below, when set

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    # Delivery bookkeeping: a row is due when queued and next_attempt_at has passed; a claimed
    # row holds a lease (locked_until) so the sweeper can requeue it when its worker died.
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    opens_count = models.PositiveIntegerField(default=0)
    clicks_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subaccount", "-created_at"], name="email_sub_created"),
            models.Index(fields=["status", "next_attempt_at"], name="email_status_due"),
            models.Index(fields=["account", "environment", "created_at"], name="email_account_env_created"),
            # Looked up by equality only (API filter, admin search).
            models.Index(fields=["from_domain"], name="email_from_domain"),
            # Set only once an ESP has accepted the email (SMTP leaves it empty): the empty
            # values, most rows, are left out, so a send writes no entry here.
            models.Index(fields=["provider_message_id"], name="email_provider_message_id",
                         condition=~models.Q(provider_message_id="")),
        ]

    def __str__(self) -> str:
        return self.public_id


class RecipientKind(models.TextChoices):
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class EmailRecipient(models.Model):
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="recipients")
    kind = models.CharField(max_length=3, choices=RecipientKind.choices)
    address = models.CharField(max_length=320, help_text="Lowercased address.")
    display_name = models.CharField(max_length=200, blank=True, default="")
    suppressed = models.BooleanField(default=False)
    # First human (not machine) open and click: set once, by a guarded UPDATE, so the event
    # that sets it is the recipient's unique open/click.
    first_opened_at = models.DateTimeField(null=True, blank=True)
    first_clicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["address"], name="recipient_address")]

    def __str__(self) -> str:
        return self.address


class EmailAttachment(models.Model):
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    content = models.BinaryField()

    def __str__(self) -> str:
        return self.filename


class EventType(models.TextChoices):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENT = "sent"
    DELIVERED = "delivered"
    DELIVERY_DELAYED = "delivery_delayed"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


class EmailEvent(models.Model):
    public_id = PublicIdField(prefix="evt")
    # No index of its own: event_email_ts leads with it.
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=20, choices=EventType.choices)
    recipient = models.CharField(max_length=320, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField()
    # Provider events carry their own id; a replayed provider webhook is recorded once.
    provider_event_id = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["email", "timestamp"], name="event_email_ts")]
        constraints = [
            models.UniqueConstraint(fields=["provider_event_id"], name="event_unique_provider_id",
                                    condition=models.Q(provider_event_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class PendingFanout(models.Model):
    """An event whose effects beyond its own row (tenant webhooks, analytics counters) are still
    to be applied. Accepting mail writes its first events with one of these instead of doing
    that work in the API request; ``email_events_fan_out`` applies it and deletes the row in
    one transaction, so each event is fanned out exactly once, even across crashes.
    """

    event = models.OneToOneField(EmailEvent, on_delete=models.CASCADE, primary_key=True, related_name="+")

    def __str__(self) -> str:
        return str(self.event_id)


class AttemptOutcome(models.TextChoices):
    SENT = "sent"
    TRANSIENT = "transient_failure"
    PERMANENT = "permanent_failure"
    SIMULATED = "simulated"


class DeliveryAttempt(models.Model):
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    response = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.email_id} #{self.number} {self.outcome}"


class SuppressionReason(models.TextChoices):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"


class Suppression(models.Model):
    public_id = PublicIdField(prefix="sup")
    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="suppressions")
    address = models.CharField(max_length=320, help_text="Lowercased address.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source_email_id = models.CharField(max_length=40, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["subaccount", "address"], name="suppression_unique")]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"


class IdempotencyRecord(models.Model):
    """One per (sub-account, key). The unique constraint, not a read, decides who runs first."""

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subaccount", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return self.key


class MonthlyUsage(models.Model):
    """Live emails accepted per account and calendar month (UTC): the quota counter.

    Spread over a few slot rows per account and month: a send adds to one random slot, so
    concurrent sends of one account rarely wait on the same row lock; usage is the sum.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="monthly_usage")
    month = models.DateField(help_text="First day of the month.")
    slot = models.PositiveSmallIntegerField(default=0)
    emails = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "month", "slot"], name="usage_unique_slot")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.month:%Y-%m} #{self.slot}: {self.emails}"


class TrackedLink(models.Model):
    """A link of a tracked email, by position: the click redirect's target comes only from here."""

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="tracked_links")
    index = models.PositiveIntegerField()
    url = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["email", "index"], name="tracked_link_unique_index")]

    def __str__(self) -> str:
        return f"{self.email_id} #{self.index}"


class TrackingHitKind(models.TextChoices):
    OPEN = "o"
    CLICK = "c"


class TrackingHit(models.Model):
    """A pixel load or click as the public endpoint saw it, written with one INSERT.

    The hot endpoints do nothing else; ``tracking_hits_flush`` turns these rows into events in
    batches (machine/unique flags, counters, webhooks) and deletes them. No foreign key: the
    endpoint knows the email only by public id, and a deleted email's hits are dropped.
    """

    kind = models.CharField(max_length=1, choices=TrackingHitKind.choices)
    email_public_id = models.CharField(max_length=40)
    link_index = models.PositiveIntegerField(null=True, blank=True)
    url = models.TextField(blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind} {self.email_public_id}"
