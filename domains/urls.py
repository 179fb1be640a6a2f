from django.urls import path

from domains import apis

urlpatterns = [
    path("domains", apis.DomainListApi.as_view()),
    path("domains/<str:domain>", apis.DomainDetailApi.as_view()),
    path("domains/<str:domain>/verify", apis.DomainVerifyApi.as_view()),
    path("domains/<str:domain>/rotate-dkim", apis.DomainRotateDkimApi.as_view()),
]
