"""Mailroom settings, driven by environment variables (see docs/configuration.md).

With no DATABASE_URL / REDIS_URL the platform runs on an embedded default that needs no
server: SQLite, kombu's filesystem transport and a file cache, all under ``var/``.
"""

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MAILROOM_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

TESTING = "pytest" in sys.modules or env_bool("MAILROOM_TESTING", False)
DEBUG = env_bool("DJANGO_DEBUG", False)

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = DATABASE_URL is None


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not EMBEDDED and not DEBUG and not TESTING:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DATABASE_URL is set")
    # The embedded default keeps a generated key in var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
if TESTING:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.admin_apps.MailroomAdminConfig",  # django.contrib.admin with the Mailroom site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served by WhiteNoise, no CDN
    "anymail",
    "accounts",
    "emails",
    "templates_app",
    "domains",
    "webhooks",
    "analytics",
]

MIDDLEWARE = [
    "config.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.middleware.RateLimitHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that skips the SELECT 1 on a quiet socket.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        # Django's cursors bind client-side and never prepare; this only lets the few hot
        # statements that ask for it (emails/services/store.py) be prepared once per connection.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "mailroom.sqlite3",
            # WAL and IMMEDIATE transactions let web, worker and beat share the file.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, key cache invalidation) ---------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.ReusingRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("MAILROOM_CACHE_PREFIX", "mailroom"),
            # A frozen Redis must not hang API requests: rate limiting fails open after this.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = env_bool("MAILROOM_RATELIMIT_FAIL_OPEN", True)
# The file cache is shared by the embedded default's processes; django-ratelimit only knows
# memcached/redis as "shared", so its cache check is silenced here.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Celery ---------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
    # visibility_timeout: longer than any task (acks_late redelivers after it).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2,
                                       "socket_timeout": 10}
else:
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "out").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu polls the folder once a second by default, and a send waited ~5 s for its
        # worker; a directory listing ten times a second is cheap (0.2-0.5 s measured).
        "polling_interval": 0.1,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Celery's Django fixup closes every database connection before and after every task unless
# this is set, and then only every 2 x this many tasks: without it each task (a dispatch
# batch) opened a new PostgreSQL connection. Tasks handle connections as Django does
# around a request instead (config/celery.py).
CELERY_DB_REUSE_MAX = 1000
# At-least-once: a task is acknowledged only when it finishes, and requeued if the worker
# dies; every task claims its rows in the database so a redelivery is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each app may keep its periodic tasks in ``<app>/schedule.py`` (a plain ``SCHEDULE`` dict,
# no model imports); beat runs them all. Sweepers set ``expires`` so a backlog never piles up.
# A publish while the broker is down must not hang an API request: the row is already
# committed and the sweeper publishes it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                    "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE: dict = {}
for _app in ("accounts", "emails", "templates_app", "domains", "webhooks", "analytics"):
    if (BASE_DIR / _app / "schedule.py").exists():
        CELERY_BEAT_SCHEDULE.update(__import__(f"{_app}.schedule", fromlist=["SCHEDULE"]).SCHEDULE)

# --- Email transport ------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
if env_str("EMAIL_BACKEND"):
    EMAIL_BACKEND = env_str("EMAIL_BACKEND")
elif env_str("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "emails.providers.outbox.OutboxEmailBackend"
MAILROOM_OUTBOX_DIR = Path(env_str("MAILROOM_OUTBOX_DIR", str(VAR_DIR / "outbox")))
# How long a worker's claim on a batch of emails lasts; the sweeper requeues rows whose
# worker died once it expires (docs/delivery.md). Must outlast the slowest batch.
MAILROOM_SEND_LEASE_SECONDS = env_int("MAILROOM_SEND_LEASE_SECONDS", 300)
# Emails a worker claims and sends over one backend connection (emails/services/dispatch.py).
MAILROOM_DISPATCH_BATCH_SIZE = env_int("MAILROOM_DISPATCH_BATCH_SIZE", 200)
# A queued email whose task was published this long ago and is still unclaimed is published
# again by the sweeper (its task was lost with the broker's data or a dead worker).
MAILROOM_SEND_REPUBLISH_AFTER_SECONDS = env_int("MAILROOM_SEND_REPUBLISH_AFTER_SECONDS", 30)
# Every ANYMAIL_<NAME> variable becomes anymail's <NAME> setting: WEBHOOK_SECRET ("user:password"
# basic auth of /hooks/) and per-ESP keys, e.g. ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY (docs/tracking.md).
ANYMAIL = {name[len("ANYMAIL_"):]: value for name, value in os.environ.items()
           if name.startswith("ANYMAIL_") and value}
ANYMAIL["WEBHOOK_SECRET"] = env_str("ANYMAIL_WEBHOOK_SECRET")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Mailroom <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Mailroom -------------------------------------------------------------------------------
MAILROOM_PUBLIC_URL = env_str("MAILROOM_PUBLIC_URL", "http://localhost:8000").rstrip("/")
MAILROOM_REQUIRE_VERIFIED_DOMAIN = env_bool("MAILROOM_REQUIRE_VERIFIED_DOMAIN", True)
MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Requests one webhook endpoint receives at once (threads of the worker delivering to it).
MAILROOM_WEBHOOK_ENDPOINT_CONCURRENCY = env_int("MAILROOM_WEBHOOK_ENDPOINT_CONCURRENCY", 4)
SMTP_RELAY_ALLOW_PLAINTEXT_AUTH = env_bool("SMTP_RELAY_ALLOW_PLAINTEXT_AUTH", False)
DNS_NAMESERVERS = env_list("DNS_NAMESERVERS", [])
DNS_TIMEOUT_SECONDS = env_float("DNS_TIMEOUT_SECONDS", 3.0)
# The platform's own DNS names that tenants' records point at.
MAILROOM_SPF_INCLUDE = env_str("MAILROOM_SPF_INCLUDE", "spf.mailroom.local")
MAILROOM_RETURN_PATH_HOST = env_str("MAILROOM_RETURN_PATH_HOST", "bounces.mailroom.local")
MAILROOM_TRACKING_HOST = env_str("MAILROOM_TRACKING_HOST", "track.mailroom.local")
# Fernet key(s) encrypting secrets at rest (DKIM private keys); comma-separated, newest first,
# for rotation. Derived from SECRET_KEY (with a distinct salt) when unset.
MAILROOM_ENCRYPTION_KEYS = env_list("MAILROOM_ENCRYPTION_KEYS", [])
# Rows per analytics counter key that recording transactions spread over (see analytics.models).
MAILROOM_ANALYTICS_SHARDS = env_int("MAILROOM_ANALYTICS_SHARDS", 8)
# How long an authenticated key stays in a process's memory before the database is asked
# again: revocation reaches every process within this many seconds.
MAILROOM_KEY_CACHE_SECONDS = env_int("MAILROOM_KEY_CACHE_SECONDS", 30)
# Failed authentications allowed per client IP per minute before 429.
MAILROOM_AUTH_FAILURES_PER_MINUTE = env_int("MAILROOM_AUTH_FAILURES_PER_MINUTE", 30)
# Failed admin logins allowed per client address and per username (django-ratelimit rate).
MAILROOM_ADMIN_LOGIN_RATE = env_str("MAILROOM_ADMIN_LOGIN_RATE", "10/m")
# Request body limit for ordinary endpoints; sending endpoints declare their own.
MAILROOM_MAX_BODY_BYTES = env_int("MAILROOM_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)

# --- SMTP relay (manage.py smtp_relay; docs/smtp-relay.md) ------------------------------------
# SMTP_RELAY_ALLOW_PLAINTEXT_AUTH is above, with the other Mailroom switches.
SMTP_RELAY_HOST = env_str("SMTP_RELAY_HOST", "127.0.0.1")
SMTP_RELAY_PORT = env_int("SMTP_RELAY_PORT", 2525)
# The name in the greeting and EHLO reply, and in the self-signed certificate's names.
SMTP_RELAY_HOSTNAME = env_str("SMTP_RELAY_HOSTNAME", "localhost")
# PEM files; both or neither (neither: a self-signed pair is generated into var/smtp-relay/).
SMTP_RELAY_TLS_CERT = env_str("SMTP_RELAY_TLS_CERT")
SMTP_RELAY_TLS_KEY = env_str("SMTP_RELAY_TLS_KEY")
SMTP_RELAY_IMPLICIT_TLS = env_bool("SMTP_RELAY_IMPLICIT_TLS", False)
SMTP_RELAY_MAX_MESSAGE_BYTES = env_int("SMTP_RELAY_MAX_MESSAGE_BYTES", 10 * 1024 * 1024)
SMTP_RELAY_TIMEOUT_SECONDS = env_int("SMTP_RELAY_TIMEOUT_SECONDS", 300)
# Worker threads (each with its own database connection) for the relay's database work.
SMTP_RELAY_THREADS = env_int("SMTP_RELAY_THREADS", 16)
# Relay processes sharing the port (SO_REUSEPORT): one process uses about one core.
SMTP_RELAY_PROCESSES = env_int("SMTP_RELAY_PROCESSES", 1)

# --- Django REST framework / OpenAPI --------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["config.api.renderers.EnvelopeRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.api.negotiation.ContentNegotiation",
    # JSON only: form parsers in the schema break openapi-python-client (DESIGN section 7).
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.LimitedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SubAccountKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.EnvelopeAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Mailroom API",
    "DESCRIPTION": "Transactional email: send, track, template, verify domains, receive webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVERS": [{"url": MAILROOM_PUBLIC_URL}],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Enum components as drf-spectacular makes them, then tag descriptions and links (config/api/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api.schema.postprocess"],
    "ENUM_NAME_OVERRIDES": {
        "EmailStatusEnum": "emails.models.EmailStatus",
        "EnvironmentEnum": "accounts.models.Environment",
    },
}

# --- Static files, i18n, logging ------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not TESTING
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MAILROOM_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

if not DEBUG and not EMBEDDED:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
