"""Settings for the django-post-office comparison (see __init__.py): post_office's defaults,
its queue in PostgreSQL, Django's SMTP backend pointed at the benchmark's sink."""

import os
from urllib.parse import unquote, urlsplit

_db = urlsplit(os.environ["PO_DATABASE_URL"])

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["post_office"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": unquote(_db.username or ""),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": _db.port or 5432,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "post_office.EmailBackend"  # send_mail() queues; the delivery backend is below
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PO_EMAIL_PORT"])
EMAIL_TIMEOUT = 30
POST_OFFICE = {"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# post_office renders every subject and body as a Django template, even without a template.
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
