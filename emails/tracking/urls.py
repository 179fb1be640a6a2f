"""Public, unauthenticated routes (DESIGN section 3), mounted at the site root."""

from django.urls import path

from emails.tracking import views

urlpatterns = [
    path("t/o/<str:token>", views.open_pixel, name="tracking-open"),
    path("t/c/<str:token>", views.click_redirect, name="tracking-click"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
