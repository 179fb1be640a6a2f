from django.urls import path

from bench.views import bare_insert
from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [path("bench/insert", bare_insert), *product_urlpatterns]
