from django.db import models

from accounts.models import Account, SubAccount

# The counters one rollup row carries, in column order. ``bounced`` is not stored: it is
# hard_bounced + soft_bounced, so the two can never disagree.
COUNTERS = (
    "accepted", "sent", "delivered", "delivery_delayed", "hard_bounced", "soft_bounced", "complained",
    "opened", "unique_opened", "machine_opened", "clicked", "unique_clicked", "unsubscribed", "failed",
    "cancelled", "suppressed",
)


class Dimension(models.TextChoices):
    ALL = "all", "All mail"
    TAG = "tag", "Tag"
    DOMAIN = "domain", "Sending domain"


class DailyCounter(models.Model):
    """Event counts of one sub-account, UTC day, environment and slice (all mail, one tag, one domain).

    Rows are only ever incremented by upserts as events are recorded (analytics.services), so a
    query reads one row per day and slice however many emails there were. An email with three
    tags adds to the ``all`` row, three ``tag`` rows and its ``domain`` row.
    """

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="+")
    # Denormalised from the sub-account (which never changes account) for account-scope queries.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="UTC day of the event's timestamp (not of the email).")
    environment = models.CharField(max_length=4)
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    value = models.CharField(max_length=255, blank=True, default="", help_text="The tag or domain; empty for all.")
    # Each recording transaction adds to one of MAILROOM_ANALYTICS_SHARDS rows per key, picked at
    # random: concurrent sends of one sub-account would otherwise all wait on the same row lock
    # until the previous send commits. Queries sum the shards (they already sum days).
    shard = models.PositiveSmallIntegerField(default=0)

    accepted = models.BigIntegerField(default=0, help_text="Emails accepted (queued or scheduled).")
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    delivery_delayed = models.BigIntegerField(default=0)
    hard_bounced = models.BigIntegerField(default=0)
    soft_bounced = models.BigIntegerField(default=0)
    complained = models.BigIntegerField(default=0)
    opened = models.BigIntegerField(default=0, help_text="Opens by people (machine opens excluded).")
    unique_opened = models.BigIntegerField(default=0)
    machine_opened = models.BigIntegerField(default=0, help_text="Opens by prefetching proxies and scanners.")
    clicked = models.BigIntegerField(default=0)
    unique_clicked = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    cancelled = models.BigIntegerField(default=0)
    suppressed = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "daily counter"
        ordering = ["-day", "subaccount_id", "dimension", "value"]
        constraints = [
            # The upsert's conflict target; its column order serves the sub-account queries
            # (equality on everything but the day, then a day range).
            models.UniqueConstraint(fields=["subaccount", "dimension", "value", "environment", "day", "shard"],
                                    name="analytics_counter_key"),
        ]
        indexes = [
            models.Index(fields=["account", "dimension", "environment", "day"], name="analytics_account_day"),
            models.Index(fields=["dimension", "environment", "day"], name="analytics_platform_day"),
        ]

    def __str__(self) -> str:
        slice_ = f"{self.dimension}={self.value}" if self.value else self.dimension
        return f"{self.subaccount_id} {self.day} {self.environment} {slice_}"

    @property
    def bounced(self) -> int:
        return self.hard_bounced + self.soft_bounced


class Dashboard(DailyCounter):
    """No data of its own: gives the volume dashboard a place (and a link) on the admin index."""

    class Meta:
        proxy = True
        verbose_name = "volume dashboard"
        verbose_name_plural = "volume dashboard"
