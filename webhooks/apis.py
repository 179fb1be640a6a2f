"""Tenant webhook API (scope ``webhooks:write``): endpoints, test sends, secret rotation,
deliveries with their attempts, retry and recover."""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of, raises
from webhooks import selectors, services
from webhooks.models import SUBSCRIBABLE_EVENT_TYPES, DeliveryStatus, EventType

SCOPES = {"*": ("webhooks:write",)}
TAGS = ["webhooks"]


WEBHOOK_EXAMPLES = [OpenApiExample("Delivery events", request_only=True, value={
    "url": "https://acme.com/hooks/mailroom", "events": ["email.delivered", "email.bounced", "email.complained"],
    "description": "Production"})]


class EndpointOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField(),
                                   help_text="Event types delivered; empty means all.")
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(help_text="manual, gone (410), failing (5 days) or operator; "
                                                      "empty while enabled.")
    disabled_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="The signing secret. Shown only now: store it.")


class AttemptOutput(serializers.Serializer):
    attempted_at = serializers.DateTimeField()
    webhook_timestamp = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    response_body = serializers.CharField(help_text="The first 1 KB of the response.")
    error = serializers.CharField()
    succeeded = serializers.BooleanField()


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="Also the webhook-id header.")
    endpoint_id = serializers.CharField(source="endpoint.public_id")
    event_type = serializers.CharField()
    status = serializers.CharField(help_text="pending, succeeded or failed.")
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    payload = serializers.SerializerMethodField()

    def get_payload(self, obj) -> dict:
        return json.loads(obj.body)


class DeliveryDetailOutput(DeliveryOutput):
    attempts = AttemptOutput(many=True)


def _events_field(**kwargs):
    return serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENT_TYPES),
                                 max_length=len(SUBSCRIBABLE_EVENT_TYPES), **kwargs)


class WebhookListApi(APIView):
    required_scopes = SCOPES

    class Input(serializers.Serializer):
        url = serializers.CharField(max_length=2048, help_text="http:// or https:// URL with a public host.")
        events = _events_field(required=False, default=list, help_text="Empty or absent: every event type.")
        description = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        secret = serializers.CharField(required=False, max_length=128,
                                       help_text="whsec_ + base64 of 24-64 bytes; generated when absent.")
        enabled = serializers.BooleanField(required=False, default=True)

    @extend_schema(operation_id="webhooks_list", summary="List webhook endpoints", tags=TAGS,
                   parameters=PAGINATION_PARAMETERS, responses=list_of("webhooks", EndpointOutput))
    def get(self, request):
        return Response(paginate(request, selectors.webhook_endpoint_list(subaccount=request.subaccount),
                                 key="webhooks", serializer_class=EndpointOutput))

    @extend_schema(operation_id="webhooks_create", examples=WEBHOOK_EXAMPLES, summary="Create a webhook endpoint (returns its secret once)",
                   tags=TAGS, request=Input, responses={201: EndpointWithSecretOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(subaccount=request.subaccount, **data.validated_data)
        return Response(EndpointWithSecretOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookUpdateInput(serializers.Serializer):
    url = serializers.CharField(max_length=2048, required=False)
    events = _events_field(required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class WebhookDetailApi(APIView):
    required_scopes = SCOPES

    @extend_schema(operation_id="webhooks_get", summary="Get a webhook endpoint", tags=TAGS,
                   responses=EndpointOutput)
    def get(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(operation_id="webhooks_update",
                   summary="Update a webhook endpoint (enabled=false disables it, true re-enables it)",
                   tags=TAGS, request=WebhookUpdateInput, responses=EndpointOutput)
    def patch(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        data = WebhookUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(operation_id="webhooks_delete", summary="Delete a webhook endpoint and its deliveries",
                   tags=TAGS, responses={204: None})
    def delete(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        services.webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestApi(APIView):
    required_scopes = SCOPES

    @extend_schema(operation_id="webhooks_test",
                   summary="Send a signed webhook.test event now; returns the delivery and its attempt",
                   tags=TAGS, request=None, responses=DeliveryDetailOutput)
    def post(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        event = services.webhook_endpoint_test(endpoint=endpoint)
        return Response(DeliveryDetailOutput(event).data)


class WebhookRotateSecretApi(APIView):
    required_scopes = SCOPES

    class Input(serializers.Serializer):
        secret = serializers.CharField(required=False, max_length=128,
                                       help_text="whsec_ + base64 of 24-64 bytes; generated when absent.")

    @extend_schema(operation_id="webhooks_rotate_secret",
                   summary="Replace the signing secret (the old one also signs for 24 h); returns it once",
                   tags=TAGS, request=Input, responses=EndpointWithSecretOutput)
    def post(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_rotate_secret(endpoint=endpoint, **data.validated_data)
        return Response(EndpointWithSecretOutput(endpoint).data)


class WebhookRecoverApi(APIView):
    required_scopes = SCOPES

    class Input(serializers.Serializer):
        since = serializers.DateTimeField(help_text="Re-send failed deliveries created at or after this time.")
        until = serializers.DateTimeField(required=False, help_text="... and before this time (default: now).")

    @raises(errors.Conflict)
    @extend_schema(operation_id="webhooks_recover",
                   summary="Queue again every failed delivery since a time", tags=TAGS, request=Input,
                   responses=inline_serializer("WebhookRecoverOutput", {"recovered": serializers.IntegerField()}))
    def post(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.webhook_deliveries_recover(endpoint=endpoint, **data.validated_data)
        return Response({"recovered": count})


class WebhookDeliveryListApi(APIView):
    required_scopes = SCOPES

    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=DeliveryStatus.values, required=False)
        event_type = serializers.ChoiceField(choices=EventType.values, required=False)

    @extend_schema(
        operation_id="webhooks_deliveries_list", summary="List an endpoint's deliveries, newest first", tags=TAGS,
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=DeliveryStatus.values),
            OpenApiParameter("event_type", OpenApiTypes.STR, enum=EventType.values),
            *PAGINATION_PARAMETERS,
        ],
        responses=list_of("deliveries", DeliveryOutput),
    )
    def get(self, request, webhook_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.webhook_delivery_list(endpoint=endpoint, **filters.validated_data).select_related("endpoint")
        return Response(paginate(request, qs, key="deliveries", serializer_class=DeliveryOutput))


class WebhookDeliveryDetailApi(APIView):
    required_scopes = SCOPES

    @extend_schema(operation_id="webhooks_deliveries_get", summary="Get a delivery with every attempt",
                   tags=TAGS, responses=DeliveryDetailOutput)
    def get(self, request, webhook_id: str, delivery_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        event = selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        return Response(DeliveryDetailOutput(event).data)


class WebhookDeliveryRetryApi(APIView):
    required_scopes = SCOPES

    @raises(errors.Conflict)
    @extend_schema(operation_id="webhooks_deliveries_retry",
                   summary="Send a delivery again (same webhook-id, fresh retry schedule)",
                   tags=TAGS, request=None, responses=DeliveryOutput)
    def post(self, request, webhook_id: str, delivery_id: str):
        endpoint = selectors.webhook_endpoint_get(subaccount=request.subaccount, endpoint_id=webhook_id)
        event = selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        return Response(DeliveryOutput(services.webhook_delivery_retry(event=event)).data)
