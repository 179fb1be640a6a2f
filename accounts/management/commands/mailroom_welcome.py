import json

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.services import account_bootstrap

DEMO_FILE = "demo-account.json"


class Command(BaseCommand):
    help = "Print where Mailroom listens; create a demo account the first time and print its keys."

    def handle(self, *args, **options):
        path = settings.VAR_DIR / DEMO_FILE
        base = settings.MAILROOM_PUBLIC_URL
        self.stdout.write(self.style.SUCCESS("Mailroom is starting (web, worker, beat):"))
        self.stdout.write(f"  API      {base}/api/v1/")
        self.stdout.write(f"  Docs     {base}/api/docs/  (Redoc: {base}/api/redoc/)")
        self.stdout.write(f"  Admin    {base}/admin/  (first: .venv/bin/python manage.py createsuperuser)")
        self.stdout.write(f"  Health   {base}/healthz")
        if settings.EMBEDDED:
            self.stdout.write(f"  Outbox   {settings.MAILROOM_OUTBOX_DIR} (every message as .eml)")
        if path.exists():
            self.stdout.write(f"  Demo account keys: {path}")
            return
        keys = account_bootstrap(name="Demo", plan_code="free", contact_email="demo@example.com")
        path.write_text(json.dumps(keys, indent=2))
        path.chmod(0o600)
        self.stdout.write(self.style.WARNING(f"A demo account was created (keys kept in {path}):"))
        for label, value in keys.items():
            self.stdout.write(f"  {label:20} {value}")
        self.stdout.write("  Try:  curl -H 'X-SubAccount-ApiKey: " + keys["test_api_key"] + f"' {base}/api/v1/api-keys")
