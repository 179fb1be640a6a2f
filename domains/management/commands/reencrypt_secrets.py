from django.core.management.base import BaseCommand

from domains import services


class Command(BaseCommand):
    help = ("Re-encrypt stored DKIM private keys under the first MAILROOM_ENCRYPTION_KEYS key. Run after "
            "putting a new key in front; drop the old key only afterwards.")

    def handle(self, *args, **options):
        count = services.dkim_keys_reencrypt()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} DKIM key(s)."))
