from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emails"

    def ready(self):
        from anymail.signals import tracking

        from emails.providers.anymail_events import anymail_tracking_received
        from emails.tracking import tasks  # noqa: F401 - registers the flush task with Celery

        tracking.connect(anymail_tracking_received, dispatch_uid="mailroom.anymail_tracking")
