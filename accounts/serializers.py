from rest_framework import serializers

from accounts.models import ApiKey, Environment, Scope, SubAccount


class SubAccountOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")

    class Meta:
        model = SubAccount
        fields = ["id", "name", "status", "suspended_reason", "track_opens", "track_clicks",
                  "created_at", "updated_at"]


class ApiKeyOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    subaccount_id = serializers.CharField(source="subaccount.public_id", allow_null=True, default=None)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "kind", "prefix", "subaccount_id", "scopes", "rate_limit", "created_at",
                  "last_used_at", "revoked_at"]


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret key. Shown only once: store it now.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]


class SubAccountKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, default="")
    environment = serializers.ChoiceField(choices=Environment.choices, default="live")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.values), required=False,
                                   allow_empty=False, min_length=1)
    rate_limit = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class AccountKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, default="")
    rate_limit = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
