"""Analytics endpoints: sub-account (scope analytics:read) and account scope. Views are thin."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import AccountAPIView
from analytics import selectors
from analytics.models import Dimension
from analytics.serializers import (
    AccountAnalyticsEmailsOutput,
    AccountUsageOutput,
    AnalyticsDomainOutput,
    AnalyticsEmailsOutput,
    AnalyticsEmailsQuery,
    AnalyticsRangeQuery,
    AnalyticsTagOutput,
)
from config.api.pagination import page_params
from config.api.schema import PAGINATION_PARAMETERS, list_of

ANALYTICS_SCOPES = {"GET": ("analytics:read",)}


def _query(serializer_class, request, default_environment: str) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    values = dict(query.validated_data)
    values.setdefault("environment", default_environment)
    return values


def _echo(values: dict) -> dict:
    """The query as answered. The selectors return JSON-ready data in the documented shape, so
    the (schema-only) output serializers are skipped: they cost more than the query itself."""
    return {"from_date": values["from_date"].isoformat(), "to_date": values["to_date"].isoformat(),
            "group_by": values["group_by"], "environment": values["environment"], "tag": values.get("tag"),
            "domain": values.get("domain")}


class AnalyticsEmailsApi(APIView):
    required_scopes = ANALYTICS_SCOPES

    @extend_schema(operation_id="analytics_emails", summary="Email counts and rates per day, week or month",
                   tags=["analytics"], parameters=[AnalyticsEmailsQuery], responses=AnalyticsEmailsOutput)
    def get(self, request):
        values = _query(AnalyticsEmailsQuery, request, request.user.environment)
        result = selectors.analytics_emails(subaccount=request.subaccount, **values)
        return Response({**_echo(values), **result})


class _TopApi(APIView):
    required_scopes = ANALYTICS_SCOPES
    dimension: str
    key: str
    item_key: str

    def get(self, request):
        values = _query(AnalyticsRangeQuery, request, request.user.environment)
        limit, offset = page_params(request)
        items, total = selectors.analytics_top(subaccount=request.subaccount, dimension=self.dimension,
                                               limit=limit, offset=offset, **values)
        return Response({
            self.key: [{self.item_key: item["value"], "total": item["total"], "rates": item["rates"]}
                       for item in items],
            "pagination": {"total": total, "limit": limit, "offset": offset,
                           "has_more": offset + len(items) < total},
        })


class AnalyticsTagsApi(_TopApi):
    dimension, key, item_key = Dimension.TAG, "tags", "tag"

    @extend_schema(operation_id="analytics_tags", summary="Tags ranked by emails sent, with their counts",
                   tags=["analytics"], parameters=[AnalyticsRangeQuery, *PAGINATION_PARAMETERS],
                   responses=list_of("tags", AnalyticsTagOutput))
    def get(self, request):
        return super().get(request)


class AnalyticsDomainsApi(_TopApi):
    dimension, key, item_key = Dimension.DOMAIN, "domains", "domain"

    @extend_schema(operation_id="analytics_domains", summary="Sending domains ranked by emails sent",
                   tags=["analytics"], parameters=[AnalyticsRangeQuery, *PAGINATION_PARAMETERS],
                   responses=list_of("domains", AnalyticsDomainOutput))
    def get(self, request):
        return super().get(request)


class AccountAnalyticsEmailsApi(AccountAPIView):
    @extend_schema(operation_id="account_analytics_emails",
                   summary="Email counts and rates of all sub-accounts, with a per-sub-account breakdown",
                   tags=["account"], parameters=[AnalyticsEmailsQuery], responses=AccountAnalyticsEmailsOutput)
    def get(self, request):
        values = _query(AnalyticsEmailsQuery, request, "live")
        result = selectors.analytics_account_emails(account=request.account, **values)
        return Response({**_echo(values), **result})


class AccountUsageApi(AccountAPIView):
    @extend_schema(operation_id="account_usage",
                   summary="Live emails this month per sub-account against the plan, and the rate limit",
                   tags=["account"], responses=AccountUsageOutput)
    def get(self, request):
        return Response(AccountUsageOutput(selectors.usage_get(account=request.account)).data)
