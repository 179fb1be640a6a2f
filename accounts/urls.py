from django.urls import path

from accounts import apis

account_urlpatterns = [
    path("subaccounts", apis.SubAccountListApi.as_view()),
    path("subaccounts/<str:subaccount_id>", apis.SubAccountDetailApi.as_view()),
    path("subaccounts/<str:subaccount_id>/suspend", apis.SubAccountSuspendApi.as_view()),
    path("subaccounts/<str:subaccount_id>/resume", apis.SubAccountResumeApi.as_view()),
    path("subaccounts/<str:subaccount_id>/api-keys", apis.SubAccountKeyListApi.as_view()),
    path("subaccounts/<str:subaccount_id>/api-keys/<str:key_id>", apis.SubAccountKeyDetailApi.as_view()),
    path("api-keys", apis.AccountKeyListApi.as_view()),
    path("api-keys/<str:key_id>", apis.AccountKeyDetailApi.as_view()),
]

urlpatterns = [
    path("api-keys", apis.ApiKeyListApi.as_view()),
    path("api-keys/<str:key_id>", apis.ApiKeyDetailApi.as_view()),
]
