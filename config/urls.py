from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.apis import AccountDetailApi
from accounts.urls import account_urlpatterns
from analytics.urls import account_urlpatterns as analytics_account_urlpatterns
from config import views

api_v1 = [
    # No trailing slashes in the API (DESIGN section 3): /account is the account itself.
    path("account", AccountDetailApi.as_view()),
    path("account/", include(account_urlpatterns)),
    path("account/", include(analytics_account_urlpatterns)),
    path("", include("accounts.urls")),
    path("", include("emails.urls")),
    path("", include("templates_app.urls")),
    path("", include("domains.urls")),
    path("", include("webhooks.urls")),
    path("", include("analytics.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", views.healthz, name="healthz"),
    re_path(r"^healthz/$", views.healthz),
    path("admin/", admin.site.urls),
    path("hooks/", include("anymail.urls")),  # ESP event webhooks (basic auth: ANYMAIL_WEBHOOK_SECRET)
    path("", include("emails.tracking.urls")),  # /t/o, /t/c, /u: open pixel, click redirect, unsubscribe
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
