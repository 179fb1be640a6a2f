from django.conf import settings
from django.db import models

from config.ids import PublicIdField


class Plan(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    requests_per_minute = models.PositiveIntegerField()
    monthly_email_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means unlimited.")

    class Meta:
        ordering = ["requests_per_minute"]

    def __str__(self) -> str:
        return self.name


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Account(models.Model):
    public_id = PublicIdField(prefix="acc")
    name = models.CharField(max_length=200)
    contact_email = models.EmailField(blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE)
    suspended_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class SubAccount(models.Model):
    public_id = PublicIdField(prefix="sub")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="subaccounts")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE)
    suspended_reason = models.CharField(max_length=255, blank=True)
    track_opens = models.BooleanField(default=False)
    track_clicks = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="subaccount_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class Environment(models.TextChoices):
    """Where mail goes: live keys reach the transport, test keys run the pipeline in a sandbox."""

    LIVE = "live"
    TEST = "test"


class KeyKind(models.TextChoices):
    ACCOUNT = "account", "Account"
    LIVE = "live", "Live"
    TEST = "test", "Test"


class Scope(models.TextChoices):
    EMAILS_SEND = "emails:send"
    EMAILS_READ = "emails:read"
    TEMPLATES_WRITE = "templates:write"
    DOMAINS_WRITE = "domains:write"
    WEBHOOKS_WRITE = "webhooks:write"
    SUPPRESSIONS_WRITE = "suppressions:write"
    ANALYTICS_READ = "analytics:read"
    API_KEYS_WRITE = "api_keys:write"
    FULL_ACCESS = "full_access"


class ApiKey(models.Model):
    """An API key; only its display prefix and SHA-256 digest are stored."""

    public_id = PublicIdField(prefix="key")
    kind = models.CharField(max_length=8, choices=KeyKind.choices)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    subaccount = models.ForeignKey(
        SubAccount, on_delete=models.CASCADE, related_name="api_keys", null=True, blank=True
    )
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=20, help_text="The first characters of the key, for recognising it.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, blank=True)
    rate_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute; empty = plan.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="account", subaccount__isnull=True)
                           | (~models.Q(kind="account") & models.Q(subaccount__isnull=False))),
                name="apikey_kind_matches_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SmtpCredential(models.Model):
    """An SMTP relay login of one sub-account (emails/relay). Like an API key, only the
    password's SHA-256 digest is stored; the username is public and unique."""

    public_id = PublicIdField(prefix="smtp")
    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="smtp_credentials")
    environment = models.CharField(max_length=4, choices=[(KeyKind.LIVE.value, "Live"),
                                                          (KeyKind.TEST.value, "Test")])
    name = models.CharField(max_length=200, blank=True)
    username = models.CharField(max_length=64, unique=True)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the password.")
    rate_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Messages per minute; empty = plan.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditLog(models.Model):
    """One thing an operator did in the admin: who, what, to which object, when. Append-only.

    The actor's username is copied so the history survives the staff user's deletion; the
    object is named by label, primary key and text for the same reason (it may be gone).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=100, help_text='e.g. "emails.email.cancel" or "accounts.plan.change".')
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="auditlog_object"),
            models.Index(fields=["actor_username", "-created_at"], name="auditlog_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.object_repr}"
