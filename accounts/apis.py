"""Account-scope API (account keys) and the sub-account's own API keys."""

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import AccountKeyAuthentication
from accounts.serializers import (
    AccountKeyInput,
    ApiKeyCreatedOutput,
    ApiKeyOutput,
    SubAccountKeyInput,
    SubAccountOutput,
)
from config.api import errors
from config.api.pagination import paginate
from config.api.schema import PAGINATION_PARAMETERS, list_of, raises

SUBACCOUNT_EXAMPLES = [OpenApiExample("A product's mail", request_only=True, value={
    "name": "Acme Onboarding", "track_opens": True, "track_clicks": False})]
KEY_EXAMPLES = [OpenApiExample("A send-only key", request_only=True, value={
    "name": "onboarding-web", "environment": "live", "scopes": ["emails:send", "emails:read"], "rate_limit": 60})]


class AccountAPIView(APIView):
    authentication_classes = [AccountKeyAuthentication]


class AccountDetailApi(AccountAPIView):
    class Output(serializers.Serializer):
        id = serializers.CharField(source="public_id")
        name = serializers.CharField()
        status = serializers.CharField()
        contact_email = serializers.EmailField()
        plan = inline_serializer("AccountPlan", {
            "code": serializers.CharField(), "name": serializers.CharField(),
            "requests_per_minute": serializers.IntegerField(),
            "monthly_email_quota": serializers.IntegerField(allow_null=True),
        })
        created_at = serializers.DateTimeField()

    @extend_schema(operation_id="account_get", summary="Get the calling account", tags=["account"],
                   responses=Output)
    def get(self, request):
        return Response(self.Output(request.account).data)


class SubAccountListApi(AccountAPIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        track_opens = serializers.BooleanField(default=False)
        track_clicks = serializers.BooleanField(default=False)

    @extend_schema(operation_id="subaccounts_list", summary="List sub-accounts", tags=["account"],
                   parameters=PAGINATION_PARAMETERS, responses=list_of("subaccounts", SubAccountOutput))
    def get(self, request):
        return Response(paginate(request, selectors.subaccount_list(account=request.account),
                                 key="subaccounts", serializer_class=SubAccountOutput))

    @raises(errors.Conflict)
    @extend_schema(operation_id="subaccounts_create", examples=SUBACCOUNT_EXAMPLES, summary="Create a sub-account", tags=["account"],
                   request=Input, responses={201: SubAccountOutput})
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        subaccount = services.subaccount_create(account=request.account, **data.validated_data)
        return Response(SubAccountOutput(subaccount).data, status=status.HTTP_201_CREATED)


class SubAccountDetailApi(AccountAPIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        track_opens = serializers.BooleanField(required=False)
        track_clicks = serializers.BooleanField(required=False)

    @extend_schema(operation_id="subaccounts_get", summary="Get a sub-account", tags=["account"],
                   responses=SubAccountOutput)
    def get(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        return Response(SubAccountOutput(subaccount).data)

    @raises(errors.Conflict)
    @extend_schema(operation_id="subaccounts_update", summary="Update a sub-account", tags=["account"],
                   request=Input, responses=SubAccountOutput)
    def patch(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        subaccount = services.subaccount_update(subaccount=subaccount, **data.validated_data)
        return Response(SubAccountOutput(subaccount).data)

    @extend_schema(operation_id="subaccounts_delete", summary="Delete a sub-account and all its data",
                   tags=["account"], responses={204: None})
    def delete(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        services.subaccount_delete(subaccount=subaccount)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubAccountSuspendApi(AccountAPIView):
    class Input(serializers.Serializer):
        reason = serializers.CharField(max_length=255, required=False, default="")

    @extend_schema(operation_id="subaccounts_suspend", summary="Suspend a sub-account: its keys get 403",
                   tags=["account"], request=Input, responses=SubAccountOutput)
    def post(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        subaccount = services.subaccount_suspend(subaccount=subaccount, **data.validated_data)
        return Response(SubAccountOutput(subaccount).data)


class SubAccountResumeApi(AccountAPIView):
    @extend_schema(operation_id="subaccounts_resume", summary="Resume a suspended sub-account",
                   tags=["account"], request=None, responses=SubAccountOutput)
    def post(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        return Response(SubAccountOutput(services.subaccount_resume(subaccount=subaccount)).data)


class SubAccountKeyListApi(AccountAPIView):
    @extend_schema(operation_id="subaccount_api_keys_list", summary="List a sub-account's API keys",
                   tags=["account"], parameters=PAGINATION_PARAMETERS,
                   responses=list_of("api_keys", ApiKeyOutput))
    def get(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        keys = selectors.api_key_list(account=request.account, subaccount=subaccount)
        return Response(paginate(request, keys, key="api_keys", serializer_class=ApiKeyOutput))

    @extend_schema(operation_id="subaccount_api_keys_create", examples=KEY_EXAMPLES, summary="Create a sub-account API key",
                   tags=["account"], request=SubAccountKeyInput, responses={201: ApiKeyCreatedOutput})
    def post(self, request, subaccount_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        data = SubAccountKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key, raw = services.api_key_create(
            account=request.account, subaccount=subaccount, kind=values["environment"],
            name=values["name"], scopes=values.get("scopes"), rate_limit=values["rate_limit"],
        )
        key.key = raw
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class SubAccountKeyDetailApi(AccountAPIView):
    @extend_schema(operation_id="subaccount_api_keys_revoke", summary="Revoke a sub-account API key",
                   tags=["account"], responses={200: ApiKeyOutput})
    def delete(self, request, subaccount_id: str, key_id: str):
        subaccount = selectors.subaccount_get(account=request.account, subaccount_id=subaccount_id)
        key = selectors.api_key_get(account=request.account, subaccount=subaccount, key_id=key_id)
        return Response(ApiKeyOutput(services.api_key_revoke(key=key)).data)


class AccountKeyListApi(AccountAPIView):
    @extend_schema(operation_id="account_api_keys_list", summary="List account API keys", tags=["account"],
                   parameters=PAGINATION_PARAMETERS, responses=list_of("api_keys", ApiKeyOutput))
    def get(self, request):
        keys = selectors.api_key_list(account=request.account, subaccount=None)
        return Response(paginate(request, keys, key="api_keys", serializer_class=ApiKeyOutput))

    @extend_schema(operation_id="account_api_keys_create", summary="Create an account API key",
                   tags=["account"], request=AccountKeyInput, responses={201: ApiKeyCreatedOutput})
    def post(self, request):
        data = AccountKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(account=request.account, kind="account", **data.validated_data)
        key.key = raw
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class AccountKeyDetailApi(AccountAPIView):
    @extend_schema(operation_id="account_api_keys_revoke", summary="Revoke an account API key",
                   tags=["account"], responses={200: ApiKeyOutput})
    def delete(self, request, key_id: str):
        key = selectors.api_key_get(account=request.account, subaccount=None, key_id=key_id)
        return Response(ApiKeyOutput(services.api_key_revoke(key=key)).data)


class ApiKeyListApi(APIView):
    """A sub-account's own keys."""

    required_scopes = {"*": ("api_keys:write",)}

    @extend_schema(operation_id="api_keys_list", summary="List this sub-account's API keys",
                   tags=["api-keys"], parameters=PAGINATION_PARAMETERS,
                   responses=list_of("api_keys", ApiKeyOutput))
    def get(self, request):
        keys = selectors.api_key_list(account=request.account, subaccount=request.subaccount)
        return Response(paginate(request, keys, key="api_keys", serializer_class=ApiKeyOutput))

    @extend_schema(operation_id="api_keys_create", examples=KEY_EXAMPLES, summary="Create an API key for this sub-account",
                   tags=["api-keys"], request=SubAccountKeyInput, responses={201: ApiKeyCreatedOutput})
    def post(self, request):
        data = SubAccountKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key, raw = services.api_key_create(
            account=request.account, subaccount=request.subaccount, kind=values["environment"],
            name=values["name"], scopes=values.get("scopes"), rate_limit=values["rate_limit"],
            granted_by=request.user,
        )
        key.key = raw
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    required_scopes = {"*": ("api_keys:write",)}

    @extend_schema(operation_id="api_keys_revoke", summary="Revoke one of this sub-account's API keys",
                   tags=["api-keys"], responses={200: ApiKeyOutput})
    def delete(self, request, key_id: str):
        key = selectors.api_key_get(account=request.account, subaccount=request.subaccount, key_id=key_id)
        return Response(ApiKeyOutput(services.api_key_revoke(key=key)).data)
