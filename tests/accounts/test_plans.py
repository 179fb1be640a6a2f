from accounts.models import Plan


def test_migrate_seeds_the_five_plans_of_the_design(db):
    assert list(Plan.objects.order_by("requests_per_minute").values_list(
        "code", "name", "requests_per_minute", "monthly_email_quota")) == [
        ("free", "Free", 60, 1_000),
        ("indie", "Indie", 120, 10_000),
        ("startup", "Startup", 300, 50_000),
        ("growth", "Growth", 600, 250_000),
        ("enterprise", "Enterprise", 1_200, None),  # unlimited
    ]
