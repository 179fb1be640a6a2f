"""Output shapes (DESIGN section 3) and the send request as documented in the OpenAPI schema."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.outputs import ReusableOutput
from emails.models import EmailEvent, EmailStatus, Environment, Suppression, SuppressionReason


class EmailOutput(ReusableOutput, serializers.Serializer):
    id = serializers.CharField(source="public_id")
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    from_ = serializers.CharField(source="from_header")
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    bcc = serializers.ListField(child=serializers.CharField())
    reply_to = serializers.ListField(child=serializers.CharField())
    subject = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = serializers.DictField()
    environment = serializers.ChoiceField(choices=Environment.choices)
    created_at = serializers.DateTimeField()
    scheduled_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    opens_count = serializers.IntegerField()
    clicks_count = serializers.IntegerField()
    template_id = serializers.SerializerMethodField()
    template_version = serializers.IntegerField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared as from_, renamed here, keeping the field order.
        return {("from" if name == "from_" else name): field for name, field in fields.items()}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_template_id(self, email) -> str | None:
        return email.template_id or None


class EventOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    data = serializers.DictField()

    class Meta:
        model = EmailEvent
        fields = ["id", "type", "timestamp", "recipient", "data"]


class DeliveryAttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    attempted_at = serializers.DateTimeField()
    outcome = serializers.CharField()
    response = serializers.CharField()
    duration_ms = serializers.IntegerField()


class AttachmentMetaOutput(serializers.Serializer):
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class EmailDetailOutput(EmailOutput):
    html = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_null=True)
    headers = serializers.DictField(child=serializers.CharField())
    attachments = AttachmentMetaOutput(many=True)
    events = EventOutput(many=True)
    delivery_attempts = DeliveryAttemptOutput(many=True)
    message_id = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)



class SendResultOutput(EmailOutput):
    replayed = serializers.BooleanField(default=False, help_text="True when an idempotent replay.")


class SuppressionOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")

    class Meta:
        model = Suppression
        fields = ["id", "address", "reason", "source_email_id", "note", "created_at"]


class AddressList(serializers.ListField):
    child = serializers.CharField()


class AttachmentInput(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    content = serializers.CharField(help_text="Base64-encoded file content.")
    content_type = serializers.CharField(required=False, help_text="Guessed from the file name when absent.")


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1},
                                {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 50}]})
class OneOrMoreAddresses(serializers.JSONField):
    pass


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1},
                                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                                 "maxItems": 50}]})
class Recipients(serializers.JSONField):
    pass


class SendEmailRequest(serializers.Serializer):
    """Either `subject` with `html` and/or `text`, or `template_id` with `variables`."""

    # Documents the request; validation itself is emails/validation.py (fast path for batches).

    from_ = serializers.CharField(help_text='Sender, e.g. "Acme <hello@acme.com>".')
    to = Recipients(help_text='Up to 50 recipients, each "a@b.com" or "Name <a@b.com>".')
    cc = OneOrMoreAddresses(required=False)
    bcc = OneOrMoreAddresses(required=False)
    reply_to = OneOrMoreAddresses(required=False, help_text="Up to 10 addresses.")
    subject = serializers.CharField(required=False, max_length=998)
    html = serializers.CharField(required=False)
    text = serializers.CharField(required=False)
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=10)
    metadata = serializers.DictField(required=False)
    attachments = AttachmentInput(many=True, required=False)
    template_id = serializers.CharField(required=False, help_text="Template id (tpl_...) or name.")
    variables = serializers.DictField(required=False)
    track_opens = serializers.BooleanField(required=False)
    track_clicks = serializers.BooleanField(required=False)
    unsubscribe = serializers.BooleanField(required=False)
    scheduled_at = serializers.DateTimeField(required=False)
    idempotency_key = serializers.CharField(required=False, max_length=255)
    idempotency_window_hours = serializers.IntegerField(required=False, min_value=1, max_value=72)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class BatchRequest(serializers.Serializer):
    emails = extend_schema_field({"type": "array", "items": {"$ref": "#/components/schemas/SendEmailRequestRequest"},
                                  "minItems": 1, "maxItems": 500})(
        SendEmailRequest(many=True, min_length=1, max_length=500))
    # The whole batch's key; the Idempotency-Key header wins over it.
    idempotency_key = serializers.CharField(required=False, max_length=255)
    idempotency_window_hours = serializers.IntegerField(required=False, min_value=1, max_value=72)


class BatchItemError(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class BatchItemResult(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    error = BatchItemError(required=False)


class BatchOutput(serializers.Serializer):
    results = BatchItemResult(many=True)
    replayed = serializers.BooleanField(default=False)


STATUS_CHOICES = EmailStatus.choices
ENVIRONMENT_CHOICES = Environment.choices
REASON_CHOICES = SuppressionReason.values
