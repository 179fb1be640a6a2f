from django.urls import path

from analytics import apis

urlpatterns = [
    path("analytics/emails", apis.AnalyticsEmailsApi.as_view()),
    path("analytics/tags", apis.AnalyticsTagsApi.as_view()),
    path("analytics/domains", apis.AnalyticsDomainsApi.as_view()),
]

# Included under /api/v1/account/ by config/urls.py (account keys).
account_urlpatterns = [
    path("analytics/emails", apis.AccountAnalyticsEmailsApi.as_view()),
    path("usage", apis.AccountUsageApi.as_view()),
]
