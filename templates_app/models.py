from django.db import models

from accounts.models import SubAccount
from config.ids import PublicIdField


class Template(models.Model):
    """A sub-account's named template; its content lives in immutable ``TemplateVersion`` rows.

    Deleting is soft (``deleted_at``): the API no longer sees the template and its name is
    free again, but every version stays for the operators, so an email that recorded
    ``template_id`` + ``template_version`` can still be traced to the exact source.
    """

    public_id = PublicIdField(prefix="tpl")
    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=100)
    current_version = models.ForeignKey(
        "TemplateVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subaccount", "name"], condition=models.Q(deleted_at__isnull=True),
                                    name="template_unique_live_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class TemplateVersion(models.Model):
    """One saved state of a template's content. Written once, never updated."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    subject = models.TextField()
    html = models.TextField(null=True, blank=True)
    text = models.TextField(null=True, blank=True)
    variables = models.JSONField(default=list, blank=True, help_text="Variables the content reads.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"v{self.number}"
