from django.urls import path

from webhooks import apis

urlpatterns = [
    path("webhooks", apis.WebhookListApi.as_view()),
    path("webhooks/<str:webhook_id>", apis.WebhookDetailApi.as_view()),
    path("webhooks/<str:webhook_id>/test", apis.WebhookTestApi.as_view()),
    path("webhooks/<str:webhook_id>/rotate-secret", apis.WebhookRotateSecretApi.as_view()),
    path("webhooks/<str:webhook_id>/recover", apis.WebhookRecoverApi.as_view()),
    path("webhooks/<str:webhook_id>/deliveries", apis.WebhookDeliveryListApi.as_view()),
    path("webhooks/<str:webhook_id>/deliveries/<str:delivery_id>", apis.WebhookDeliveryDetailApi.as_view()),
    path("webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/retry", apis.WebhookDeliveryRetryApi.as_view()),
]
