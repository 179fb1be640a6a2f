"""Feed delivery status notifications (RFC 3464) in: from files, or from standard input.

    manage.py ingest_dsn bounce.eml [more.eml ...]
    manage.py ingest_dsn - < bounce.eml        # e.g. a Postfix pipe transport on the return path
"""

import sys

from django.core.management.base import BaseCommand

from emails.tracking.dsn import dsn_ingest


class Command(BaseCommand):
    help = "Record the bounces and delays reported by RFC 3464 delivery status notifications."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="Message files (.eml), or - for standard input.")

    def handle(self, *args, **options):
        for name in options["files"]:
            if name == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as handle:
                    raw = handle.read()
            for outcome in dsn_ingest(raw=raw):
                state = "recorded" if outcome.recorded else f"skipped ({outcome.note})"
                self.stdout.write(f"{name}: {outcome.recipient or '-'} {outcome.email_id or '-'} "
                                  f"{outcome.event_type or '-'} {state}")
