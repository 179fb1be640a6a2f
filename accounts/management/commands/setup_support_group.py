from django.core.management.base import BaseCommand

from accounts.staff import SUPPORT_GROUP, support_group_setup


class Command(BaseCommand):
    help = 'Create or refresh the read-only "support" staff group (view permissions only).'

    def handle(self, *args, **options):
        group = support_group_setup()
        self.stdout.write(f'Group "{SUPPORT_GROUP}": {group.permissions.count()} view permissions. Add staff '
                          "users to it in the admin (Authentication and Authorization > Users).")
