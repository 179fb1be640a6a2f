from django.db import migrations

PLANS = [
    ("free", "Free", 60, 1_000),
    ("indie", "Indie", 120, 10_000),
    ("startup", "Startup", 300, 50_000),
    ("growth", "Growth", 600, 250_000),
    ("enterprise", "Enterprise", 1_200, None),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for code, name, rpm, quota in PLANS:
        Plan.objects.update_or_create(
            code=code, defaults={"name": name, "requests_per_minute": rpm, "monthly_email_quota": quota}
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
