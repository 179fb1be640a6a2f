"""Reachability of the Celery broker, for /healthz."""

from pathlib import Path

from django.conf import settings


def broker_ok() -> bool:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return folder.is_dir()
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
        except redis.RedisError:
            return False
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return True
    except Exception:  # kombu raises transport-specific errors
        return False
