from django.urls import path

from emails import apis
from emails.relay import apis as relay_apis

urlpatterns = [
    path("emails", apis.EmailListApi.as_view()),
    path("emails/batch", apis.EmailBatchApi.as_view()),
    path("emails/<str:email_id>", apis.EmailDetailApi.as_view()),
    path("emails/<str:email_id>/events", apis.EmailEventsApi.as_view()),
    path("emails/<str:email_id>/insights", apis.EmailInsightsApi.as_view()),
    path("emails/<str:email_id>/cancel", apis.EmailCancelApi.as_view()),
    path("emails/<str:email_id>/resend", apis.EmailResendApi.as_view()),
    path("suppressions", apis.SuppressionListApi.as_view()),
    path("suppressions/<str:ref>", apis.SuppressionDetailApi.as_view()),
]

# SMTP relay logins (emails/relay).
smtp_credential_urlpatterns = [
    path("smtp-credentials", relay_apis.SmtpCredentialListApi.as_view()),
    path("smtp-credentials/<str:credential_id>", relay_apis.SmtpCredentialDetailApi.as_view()),
]
urlpatterns += smtp_credential_urlpatterns
