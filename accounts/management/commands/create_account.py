import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Plan
from accounts.services import account_bootstrap
from config.api.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an account with a default sub-account and its keys (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--plan", default="free", help="Plan code (free, indie, startup, growth, enterprise).")
        parser.add_argument("--email", default="", help="The account's contact address.")
        parser.add_argument("--rate-limit", type=int, default=None,
                            help="Per-minute request limit for the keys made (may exceed the plan).")
        parser.add_argument("--json", action="store_true", help="Print the ids and keys as JSON.")

    def handle(self, *args, name, plan, email, rate_limit, **options):
        if rate_limit is not None and rate_limit < 1:
            raise CommandError("--rate-limit must be a positive integer")
        if not Plan.objects.filter(code=plan).exists():
            codes = ", ".join(Plan.objects.values_list("code", flat=True))
            raise CommandError(f"Unknown plan {plan!r}; choose one of: {codes}")
        try:
            result = account_bootstrap(name=name, plan_code=plan, contact_email=email, rate_limit=rate_limit)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        for label, value in result.items():
            self.stdout.write(f"{label:20} {value}")
        self.stdout.write(self.style.WARNING("Store the keys now: they are not shown again."))

