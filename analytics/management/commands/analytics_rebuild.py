"""Recount the analytics rollups from the event rows; report (and repair) any difference."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import SubAccount
from analytics.services import rollups_rebuild

SHOWN = 50


class Command(BaseCommand):
    help = ("Recount the daily analytics counters from the email event rows and report every counter that "
            "differs from the stored (live) one. Rewrites the counters unless --check. Idempotent; event "
            "recording waits while it runs.")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="Only compare; exit with status 1 when a counter differs.")
        parser.add_argument("--subaccount", metavar="SUB_ID", help="Only this sub-account (its sub_ id).")

    def handle(self, *args, check: bool, subaccount: str | None, **options):
        target = None
        if subaccount:
            target = SubAccount.objects.filter(public_id=subaccount).first()
            if target is None:
                raise CommandError(f"No sub-account {subaccount}.")
        report = rollups_rebuild(subaccount=target, check_only=check)
        self.stdout.write(f"Counted {report.events} events into {report.rows} counter rows.")
        if not report.differences:
            self.stdout.write(self.style.SUCCESS("No differences: the live counters match the events."))
            return
        for difference in report.differences[:SHOWN]:
            self.stdout.write(f"  {difference}")
        if len(report.differences) > SHOWN:
            self.stdout.write(f"  ... and {len(report.differences) - SHOWN} more")
        if check:
            raise CommandError(f"{len(report.differences)} counters differ from the events.", returncode=1)
        self.stdout.write(self.style.WARNING(
            f"{len(report.differences)} counters differed; rewritten from the events."))
