"""The domains API: thin views over domains.services and domains.selectors."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.errors import ValidationError
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of, raises
from domains import records, selectors, services
from domains.models import DomainStatus
from domains.names import to_unicode

TAGS = ["domains"]
DOMAIN_PARAMETER = OpenApiParameter(
    "domain", str, OpenApiParameter.PATH,
    description="The domain name (Unicode or xn-- form) or its id (dom_...).")


DOMAIN_EXAMPLES = [OpenApiExample("A sending domain", request_only=True, value={
    "domain": "acme.com", "return_path_subdomain": "bounces", "track_opens": True})]


class DomainDnsRecordOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["TXT", "CNAME"])
    name = serializers.CharField()
    value = serializers.CharField(help_text="The record's data, as one string.")
    zone_value = serializers.CharField(
        help_text="The data as a zone file wants it: TXT split into quoted strings of at most 255 bytes.")
    purpose = serializers.ChoiceField(choices=["verification", "spf", "dkim", "dmarc", "return_path", "tracking"])
    required = serializers.BooleanField(help_text="Whether the domain verifies without it (DMARC does).")
    selector = serializers.CharField(allow_null=True, help_text="DKIM records only.")
    status = serializers.ChoiceField(choices=["pending", "verified", "missing", "invalid", "temporary_failure"])
    found = serializers.ListField(child=serializers.CharField(), help_text="What DNS returned at the last check.")
    error = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)


class SendingDomainOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    domain = serializers.CharField(source="name")
    unicode_domain = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=DomainStatus.choices)
    can_send = serializers.BooleanField(help_text="Live keys may send from it (verified, or verified "
                                                   "and now in a temporary failure).")
    ownership_verified = serializers.BooleanField()
    spf_verified = serializers.BooleanField()
    dkim_verified = serializers.BooleanField()
    dmarc_verified = serializers.BooleanField()
    return_path_verified = serializers.BooleanField()
    dns_records = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    last_error = serializers.CharField(allow_blank=True)
    return_path_subdomain = serializers.CharField()
    tracking_subdomain = serializers.SerializerMethodField()
    track_opens = serializers.BooleanField(allow_null=True)
    track_clicks = serializers.BooleanField(allow_null=True)
    last_checked_at = serializers.DateTimeField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    next_check_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_unicode_domain(self, domain) -> str:
        return to_unicode(domain.name)

    def get_tracking_subdomain(self, domain) -> str | None:
        return domain.tracking_subdomain or None

    @extend_schema_field(DomainDnsRecordOutput(many=True))
    def get_dns_records(self, domain):
        return DomainDnsRecordOutput(records.dns_records(domain), many=True).data

    def get_warnings(self, domain) -> list[str]:
        return records.warnings(domain)


class DomainListApi(APIView):
    required_scopes = {"*": ("domains:write",)}

    class Input(serializers.Serializer):
        domain = serializers.CharField(max_length=300)
        return_path_subdomain = serializers.CharField(max_length=63, required=False, allow_blank=True,
                                                      help_text="Default 'bounces'.")
        tracking_subdomain = serializers.CharField(max_length=63, required=False, allow_blank=True,
                                                   allow_null=True, help_text="Optional custom tracking host.")
        track_opens = serializers.BooleanField(required=False, allow_null=True, default=None)
        track_clicks = serializers.BooleanField(required=False, allow_null=True, default=None)

    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=DomainStatus.choices, required=False)

    @extend_schema(operation_id="domains_list", summary="List the sub-account's domains", tags=TAGS,
                   parameters=[*PAGINATION_PARAMETERS,
                               OpenApiParameter("status", str, enum=DomainStatus.values)],
                   responses=list_of("domains", SendingDomainOutput))
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        if not filters.is_valid():
            raise ValidationError("Invalid filters.", details=filters.errors)
        domains = selectors.domain_list(subaccount=request.subaccount, **filters.validated_data)
        return Response(paginate(request, domains, key="domains", serializer_class=SendingDomainOutput))

    @raises(errors.Conflict)
    @extend_schema(operation_id="domains_create", examples=DOMAIN_EXAMPLES, summary="Add a sending domain",
                   description="Makes an RSA-2048 DKIM key and returns the DNS records to publish.",
                   tags=TAGS, request=Input, responses={201: SendingDomainOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        domain = services.domain_add(subaccount=request.subaccount, **data.validated_data)
        return Response(SendingDomainOutput(domain).data, status=status.HTTP_201_CREATED)


class DomainDetailApi(APIView):
    required_scopes = {"*": ("domains:write",)}

    class Input(serializers.Serializer):
        track_opens = serializers.BooleanField(required=False, allow_null=True,
                                               help_text="null: as the sub-account's setting.")
        track_clicks = serializers.BooleanField(required=False, allow_null=True)
        tracking_subdomain = serializers.CharField(max_length=63, required=False, allow_blank=True,
                                                   allow_null=True)

    @extend_schema(operation_id="domains_get", summary="Get a domain with its DNS records", tags=TAGS,
                   parameters=[DOMAIN_PARAMETER], responses=SendingDomainOutput)
    def get(self, request, domain: str):
        found = selectors.domain_get_for_subaccount(subaccount=request.subaccount, domain=domain)
        return Response(SendingDomainOutput(found).data)

    @extend_schema(operation_id="domains_update", summary="Change a domain's tracking settings", tags=TAGS,
                   parameters=[DOMAIN_PARAMETER], request=Input, responses=SendingDomainOutput)
    def patch(self, request, domain: str):
        found = selectors.domain_get_for_subaccount(subaccount=request.subaccount, domain=domain)
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = services.domain_update(domain=found, **data.validated_data)
        return Response(SendingDomainOutput(updated).data)

    @extend_schema(operation_id="domains_delete", summary="Delete a domain and its DKIM keys", tags=TAGS,
                   parameters=[DOMAIN_PARAMETER], responses={204: None})
    def delete(self, request, domain: str):
        found = selectors.domain_get_for_subaccount(subaccount=request.subaccount, domain=domain)
        services.domain_delete(domain=found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainVerifyApi(APIView):
    required_scopes = {"*": ("domains:write",)}

    @extend_schema(operation_id="domains_verify", summary="Check the domain's DNS records now",
                   description="Returns each record's state and what DNS returned for it.",
                   tags=TAGS, parameters=[DOMAIN_PARAMETER], request=None, responses=SendingDomainOutput)
    def post(self, request, domain: str):
        found = selectors.domain_get_for_subaccount(subaccount=request.subaccount, domain=domain)
        return Response(SendingDomainOutput(services.domain_verify(domain=found)).data)


class DomainRotateDkimApi(APIView):
    required_scopes = {"*": ("domains:write",)}

    @extend_schema(operation_id="domains_rotate_dkim", summary="Start a DKIM key rotation",
                   description="Adds a new DKIM record to publish beside the current one. The current "
                               "key keeps signing until the new record verifies, then it is retired.",
                   tags=TAGS, parameters=[DOMAIN_PARAMETER], request=None, responses=SendingDomainOutput)
    def post(self, request, domain: str):
        found = selectors.domain_get_for_subaccount(subaccount=request.subaccount, domain=domain)
        return Response(SendingDomainOutput(services.domain_dkim_rotate(domain=found)).data)
