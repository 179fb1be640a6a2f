"""``/smtp-credentials``: a sub-account's SMTP relay logins (scope ``emails:send``)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Environment, SmtpCredential
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of
from emails.relay import credentials

SCOPES = {"*": ("emails:send",)}


ENVIRONMENTS = Environment.choices


class SmtpCredentialOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    # The plain value list the other endpoints use, so the schema has one environment enum.
    environment = serializers.ChoiceField(choices=ENVIRONMENTS)

    class Meta:
        model = SmtpCredential
        fields = ["id", "name", "username", "environment", "rate_limit", "created_at", "last_used_at",
                  "revoked_at"]


class SmtpCredentialCreatedOutput(SmtpCredentialOutput):
    password = serializers.CharField(help_text="The SMTP password. Shown only once: store it now.")

    class Meta(SmtpCredentialOutput.Meta):
        fields = [*SmtpCredentialOutput.Meta.fields, "password"]


class SmtpCredentialListApi(APIView):
    required_scopes = SCOPES

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        environment = serializers.ChoiceField(
            choices=ENVIRONMENTS, required=False,
            help_text="Defaults to the calling key's environment; a test key can only create test logins.")
        rate_limit = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                              help_text="Messages per minute, at most the plan's; empty = plan.")

    @extend_schema(operation_id="smtp_credentials_list", summary="List SMTP credentials", tags=["smtp"],
                   parameters=PAGINATION_PARAMETERS, responses=list_of("smtp_credentials", SmtpCredentialOutput))
    def get(self, request):
        rows = credentials.smtp_credential_list(subaccount=request.subaccount)
        return Response(paginate(request, rows, key="smtp_credentials", serializer_class=SmtpCredentialOutput))

    @extend_schema(operation_id="smtp_credentials_create", summary="Create an SMTP credential (password shown once)",
                   tags=["smtp"], request=Input, responses={201: SmtpCredentialCreatedOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        credential, password = credentials.smtp_credential_create(
            subaccount=request.subaccount, environment=values.get("environment") or request.user.environment,
            name=values["name"], rate_limit=values["rate_limit"], granted_by=request.user,
        )
        credential.password = password
        return Response(SmtpCredentialCreatedOutput(credential).data, status=status.HTTP_201_CREATED)


class SmtpCredentialDetailApi(APIView):
    required_scopes = SCOPES

    @extend_schema(operation_id="smtp_credentials_get", summary="Get an SMTP credential", tags=["smtp"],
                   responses=SmtpCredentialOutput)
    def get(self, request, credential_id: str):
        credential = credentials.smtp_credential_get(subaccount=request.subaccount, credential_id=credential_id)
        return Response(SmtpCredentialOutput(credential).data)

    @extend_schema(operation_id="smtp_credentials_revoke", summary="Revoke an SMTP credential", tags=["smtp"],
                   responses={200: SmtpCredentialOutput})
    def delete(self, request, credential_id: str):
        credential = credentials.smtp_credential_get(subaccount=request.subaccount, credential_id=credential_id)
        return Response(SmtpCredentialOutput(credentials.smtp_credential_revoke(credential=credential)).data)
