"""Email and suppression endpoints. Views validate, call one service, render."""

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.errors import ValidationError
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of, raises
from emails import selectors, services
from emails.insights import email_insights
from emails.models import EmailAttachment, SuppressionReason
from emails.serializers import (
    ENVIRONMENT_CHOICES,
    STATUS_CHOICES,
    BatchOutput,
    BatchRequest,
    EmailDetailOutput,
    EmailOutput,
    EventOutput,
    SendEmailRequest,
    SendResultOutput,
    SuppressionOutput,
)

SEND_SCOPES = ("emails:send",)
READ_SCOPES = ("emails:read",)
SEND_EXAMPLES = [
    OpenApiExample("With a template", request_only=True, value={
        "from": "Acme <hello@acme.com>", "to": "ada@example.com", "template_id": "welcome",
        "variables": {"company": "Acme", "user_name": "Ada"}, "tags": ["welcome"],
        "metadata": {"user_id": "u_1042"}}),
    OpenApiExample("With its own content", request_only=True, value={
        "from": "Acme <hello@acme.com>", "to": ["ada@example.com"], "reply_to": "support@acme.com",
        "subject": "Your receipt", "html": "<p>Thanks for your order, Ada!</p>",
        "text": "Thanks for your order, Ada!", "track_opens": True, "unsubscribe": True,
        "scheduled_at": "2026-05-04T10:00:00Z"}),
]
BATCH_EXAMPLES = [
    OpenApiExample("Two welcome emails", request_only=True, value={"emails": [
        {"from": "Acme <hello@acme.com>", "to": "ada@example.com", "template_id": "welcome",
         "variables": {"company": "Acme", "user_name": "Ada"}},
        {"from": "Acme <hello@acme.com>", "to": "not-an-address", "template_id": "welcome",
         "variables": {"company": "Acme", "user_name": "Grace"}},
    ]}),
    OpenApiExample("Per-item results", response_only=True, value={"results": [
        {"index": 0, "id": "msg_3Jf8cVq2LxZr9TbWnK4dPa7e", "status": "queued"},
        {"index": 1, "error": {"code": "validation_error", "message": "The email is invalid.",
                               "details": {"to": ["'not-an-address' is not a valid email address."]}}},
    ], "replayed": False}),
]
SUPPRESSION_EXAMPLES = [OpenApiExample("Suppress by hand", request_only=True, value={
    "address": "ada@example.com", "reason": "manual", "note": "Asked by phone to stop all email."})]


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="Up to 255 characters; the same key and body within 24 h (up to 72 h) replays the response.",
)


def _idempotency(request, body) -> tuple[str | None, int | None]:
    body = body if isinstance(body, dict) else {}
    # A field that is sent must be valid: `null` is not "absent" (the schema says string / integer).
    if "idempotency_key" in body and not isinstance(body["idempotency_key"], str):
        raise ValidationError(details={"idempotency_key": ["1 to 255 characters on one line."]})
    key = request.headers.get("Idempotency-Key") or body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 255 or "\n" in key):
        raise ValidationError(details={"idempotency_key": ["1 to 255 characters on one line."]})
    window = body.get("idempotency_window_hours", None)
    if "idempotency_window_hours" in body and (
            not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 72):
        # Refused, not ignored: a client asking for 0 or 100 hours must not get 24 silently.
        raise ValidationError(details={"idempotency_window_hours": ["A whole number of hours from 1 to 72."]})
    return key, window


def _replay_response(status_code: int, body: dict, replayed: bool) -> Response:
    response = Response({**body, "replayed": replayed}, status=status_code)
    if replayed:
        response["X-Idempotent-Replay"] = "true"
    return response


class EmailListApi(APIView):
    required_scopes = {"GET": READ_SCOPES, "POST": SEND_SCOPES}
    max_body_bytes = 15 * 1024 * 1024  # 10 MiB of attachments, base64-encoded, plus the rest

    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=STATUS_CHOICES, required=False)
        tag = serializers.CharField(required=False, max_length=64)
        to = serializers.CharField(required=False, max_length=320)
        from_ = serializers.CharField(required=False, max_length=320)
        domain = serializers.CharField(required=False, max_length=255)
        from_date = serializers.DateTimeField(required=False)
        to_date = serializers.DateTimeField(required=False)
        environment = serializers.ChoiceField(choices=ENVIRONMENT_CHOICES, required=False)

        def get_fields(self):
            fields = super().get_fields()
            return {("from" if name == "from_" else name): field for name, field in fields.items()}

    @extend_schema(operation_id="emails_list", summary="List emails", tags=["emails"],
                   parameters=[Filters, *PAGINATION_PARAMETERS], responses=list_of("emails", EmailOutput))
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        if "from" in values:
            values["sender"] = values.pop("from")
        emails = selectors.email_list(subaccount=request.subaccount, **values)
        return Response(paginate(request, emails, key="emails", serializer_class=EmailOutput))

    @raises(errors.DomainNotVerified, errors.TemplateNotFound, errors.InvalidVariables, errors.RecipientSuppressed,
            errors.IdempotencyConflict, errors.IdempotencyMismatch, errors.QuotaExceeded)
    @extend_schema(operation_id="emails_send", examples=SEND_EXAMPLES, summary="Send an email", tags=["emails"],
                   request=SendEmailRequest, parameters=[IDEMPOTENCY_HEADER], responses={201: SendResultOutput})
    def post(self, request):
        key, window = _idempotency(request, request.data)

        def run():
            email = services.email_send(subaccount=request.subaccount, environment=request.user.environment,
                                        data=request.data)
            return status.HTTP_201_CREATED, EmailOutput.render(email)

        status_code, body, replayed = services.idempotent(
            subaccount=request.subaccount, key=key, body=request.data, window_hours=window, run=run)
        return _replay_response(status_code, body, replayed)


class EmailBatchApi(APIView):
    required_scopes = {"POST": SEND_SCOPES}
    max_body_bytes = 40 * 1024 * 1024

    @raises(errors.IdempotencyConflict, errors.IdempotencyMismatch)
    @extend_schema(operation_id="emails_send_batch", examples=BATCH_EXAMPLES, summary="Send up to 500 emails", tags=["emails"],
                   request=BatchRequest, parameters=[IDEMPOTENCY_HEADER], responses={200: BatchOutput})
    def post(self, request):
        body = request.data
        items = body.get("emails") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ValidationError(details={"emails": ["A non-empty list of emails is required."]})
        if len(items) > 500:
            raise ValidationError(details={"emails": ["At most 500 emails per batch."]})
        key, window = _idempotency(request, body)

        def run():
            results = services.email_send_batch(subaccount=request.subaccount,
                                                environment=request.user.environment, items=items)
            return status.HTTP_200_OK, {"results": results}

        status_code, response, replayed = services.idempotent(
            subaccount=request.subaccount, key=key, body=body, window_hours=window, run=run)
        return _replay_response(status_code, response, replayed)


class EmailDetailApi(APIView):
    required_scopes = {"GET": READ_SCOPES, "PATCH": SEND_SCOPES, "DELETE": SEND_SCOPES}

    class RescheduleInput(serializers.Serializer):
        scheduled_at = serializers.DateTimeField()

    @extend_schema(operation_id="emails_get", summary="Get an email with its events and attempts",
                   tags=["emails"], responses=EmailDetailOutput)
    def get(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        email = type(email).objects.prefetch_related(
            Prefetch("attachments", queryset=EmailAttachment.objects.defer("content")),
            "events", "delivery_attempts").get(pk=email.pk)
        return Response(EmailDetailOutput(email).data)

    @raises(errors.Conflict)
    @extend_schema(operation_id="emails_reschedule", summary="Reschedule a scheduled email", tags=["emails"],
                   request=RescheduleInput, responses=EmailOutput)
    def patch(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        data = self.RescheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = services.email_reschedule(email=email, scheduled_at=data.validated_data["scheduled_at"])
        return Response(EmailOutput(email).data)

    @raises(errors.Conflict)
    @extend_schema(operation_id="emails_delete", summary="Cancel a queued or scheduled email", tags=["emails"],
                   request=None, responses={200: EmailOutput})
    def delete(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        return Response(EmailOutput(services.email_cancel(email=email)).data)


class EmailEventsApi(APIView):
    required_scopes = {"GET": READ_SCOPES}

    @extend_schema(operation_id="emails_events", summary="An email's event timeline", tags=["emails"],
                   parameters=PAGINATION_PARAMETERS, responses=list_of("events", EventOutput))
    def get(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        return Response(paginate(request, selectors.email_events(email=email), key="events",
                                 serializer_class=EventOutput))


class EmailInsightsApi(APIView):
    required_scopes = {"GET": READ_SCOPES}

    class Insight(serializers.Serializer):
        code = serializers.CharField()
        severity = serializers.ChoiceField(choices=["warning", "info"])
        message = serializers.CharField()
        details = serializers.DictField()

    @extend_schema(operation_id="emails_insights", summary="Warnings about an email's deliverability",
                   tags=["emails"], responses=inline_serializer("EmailInsights", {"insights": Insight(many=True)}))
    def get(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        return Response({"insights": email_insights(email=email)})


class EmailCancelApi(APIView):
    required_scopes = {"POST": SEND_SCOPES}

    @raises(errors.Conflict)
    @extend_schema(operation_id="emails_cancel", summary="Cancel a queued or scheduled email", tags=["emails"],
                   request=None, responses={200: EmailOutput})
    def post(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        return Response(EmailOutput(services.email_cancel(email=email)).data)


class EmailResendApi(APIView):
    required_scopes = {"POST": SEND_SCOPES}

    @raises(errors.DomainNotVerified, errors.RecipientSuppressed, errors.QuotaExceeded)
    @extend_schema(operation_id="emails_resend", summary="Send the same content again as a new email",
                   tags=["emails"], request=None, responses={201: EmailOutput})
    def post(self, request, email_id: str):
        email = selectors.email_get(subaccount=request.subaccount, email_id=email_id)
        new = services.email_resend(email=email, environment=request.user.environment)
        return Response(EmailOutput(new).data, status=status.HTTP_201_CREATED)


class SuppressionListApi(APIView):
    required_scopes = {"GET": ("emails:read", "suppressions:write"), "POST": ("suppressions:write",)}

    class Filters(serializers.Serializer):
        reason = serializers.ChoiceField(choices=SuppressionReason.values, required=False)
        address = serializers.CharField(required=False, max_length=320)

    class Input(serializers.Serializer):
        address = serializers.EmailField(max_length=320)
        reason = serializers.ChoiceField(choices=SuppressionReason.values, default=SuppressionReason.MANUAL)
        note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)

    @extend_schema(operation_id="suppressions_list", summary="List suppressed recipients", tags=["suppressions"],
                   parameters=[Filters, *PAGINATION_PARAMETERS], responses=list_of("suppressions", SuppressionOutput))
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.suppression_list(subaccount=request.subaccount, **filters.validated_data)
        return Response(paginate(request, rows, key="suppressions", serializer_class=SuppressionOutput))

    @extend_schema(operation_id="suppressions_add", examples=SUPPRESSION_EXAMPLES, summary="Suppress a recipient", tags=["suppressions"],
                   request=Input, responses={201: SuppressionOutput, 200: SuppressionOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        row, created = services.suppression_add(subaccount_id=request.subaccount.pk, **data.validated_data)
        return Response(SuppressionOutput(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SuppressionDetailApi(APIView):
    required_scopes = {"DELETE": ("suppressions:write",)}

    @extend_schema(operation_id="suppressions_delete", summary="Remove a suppression (by sup_ id or address)",
                   tags=["suppressions"], responses={204: None})
    def delete(self, request, ref: str):
        services.suppression_delete(subaccount=request.subaccount, ref=ref)
        return Response(status=status.HTTP_204_NO_CONTENT)
