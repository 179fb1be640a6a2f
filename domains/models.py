from django.db import models
from django.db.models import Q

from config.ids import PublicIdField


class DomainStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Failed"
    TEMPORARY_FAILURE = "temporary_failure", "Temporary failure"


class Domain(models.Model):
    """A sending domain of one sub-account.

    ``verified_at`` is set while the domain may send live mail: when it first verifies, kept
    through a ``temporary_failure`` (our resolver failing is no reason to stop a tenant's
    mail), cleared when it ``failed``. A partial unique index on it means one domain name is
    verified by at most one sub-account at a time.
    """

    public_id = PublicIdField(prefix="dom")
    subaccount = models.ForeignKey("accounts.SubAccount", on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, help_text="Lowercase IDNA A-label (xn--... for IDNs).")
    status = models.CharField(max_length=20, choices=DomainStatus.choices, default=DomainStatus.PENDING)
    verification_token = models.CharField(max_length=64)
    return_path_subdomain = models.CharField(max_length=63, default="bounces")
    tracking_subdomain = models.CharField(max_length=63, blank=True, default="")
    # Defaults for emails sent from this domain; empty means "as the sub-account says".
    track_opens = models.BooleanField(null=True, blank=True)
    track_clicks = models.BooleanField(null=True, blank=True)
    # Per DNS record: {"<key>": {"status", "found", "error", "note", "value", "checked_at"}}.
    record_states = models.JSONField(default=dict, blank=True)
    ownership_verified = models.BooleanField(default=False)
    spf_verified = models.BooleanField(default=False)
    dkim_verified = models.BooleanField(default=False)
    dmarc_verified = models.BooleanField(default=False)
    return_path_verified = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True, help_text="Last check that found every required record.")
    failed_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    recheck_until = models.DateTimeField(null=True, blank=True,
                                         help_text="Unverified domains are re-checked often until then.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subaccount", "name"], name="domain_unique_per_subaccount"),
            models.UniqueConstraint(fields=["name"], condition=Q(verified_at__isnull=False),
                                    name="domain_verified_by_one_subaccount"),
        ]
        indexes = [
            models.Index(fields=["next_check_at"], name="domain_next_check_idx"),
            models.Index(fields=["status"], name="domain_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def can_send(self) -> bool:
        return self.verified_at is not None


class DkimKeyStatus(models.TextChoices):
    PENDING = "pending", "Pending (published, not yet signing)"
    ACTIVE = "active", "Active (signing)"
    RETIRED = "retired", "Retired"


class DkimKey(models.Model):
    """An RSA-2048 DKIM key. One ``active`` key signs; during a rotation one ``pending`` key
    waits for its DNS record; retired keys keep their selector and public half for the record."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dkim_keys")
    selector = models.CharField(max_length=63)
    status = models.CharField(max_length=10, choices=DkimKeyStatus.choices)
    key_bits = models.PositiveSmallIntegerField(default=2048)
    public_key = models.TextField(help_text="Base64 SubjectPublicKeyInfo, the p= of the DKIM record.")
    # A Fernet token (domains.crypto); emptied when the key retires, since nothing signs with it.
    private_key_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkimkey_unique_selector"),
            models.UniqueConstraint(fields=["domain"], condition=Q(status="active"), name="dkimkey_one_active"),
            models.UniqueConstraint(fields=["domain"], condition=Q(status="pending"), name="dkimkey_one_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name} ({self.status})"
