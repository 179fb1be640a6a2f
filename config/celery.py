import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mailroom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(weak=False)
@task_postrun.connect(weak=False)
def _connections_as_around_a_request(task=None, **kwargs) -> None:
    """Django's per-request connection handling around each task: a connection is kept for
    ``CONN_MAX_AGE`` (its prepared statements with it) and health-checked, not reopened per
    task (``CELERY_DB_REUSE_MAX`` in settings). Eager tasks run inside their caller's
    request or transaction, which owns the connection."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
