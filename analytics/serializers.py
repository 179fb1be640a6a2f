"""Query and response shapes of the analytics API (the response classes document the schema)."""

from datetime import timedelta

from rest_framework import serializers

from analytics.selectors import ENVIRONMENTS, GROUP_BY, OUTPUT_COUNTERS, utc_today

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class AnalyticsRangeQuery(serializers.Serializer):
    from_date = serializers.DateField(required=False, help_text=(
        "First UTC day, inclusive (YYYY-MM-DD). Default: 29 days before to_date."))
    to_date = serializers.DateField(required=False, help_text="Last UTC day, inclusive. Default: today (UTC).")
    environment = serializers.ChoiceField(choices=ENVIRONMENTS, required=False, help_text=(
        "live, test or all. Default: the calling key's environment (account keys: live)."))

    def validate(self, attrs):
        to_date = attrs.get("to_date") or utc_today()
        from_date = attrs.get("from_date") or to_date - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if to_date < from_date:
            raise serializers.ValidationError({"to_date": ["Must be on or after from_date."]})
        days = (to_date - from_date).days + 1
        if days > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"to_date": [f"The range spans {days} days; at most {MAX_RANGE_DAYS} are allowed."]})
        return {**attrs, "from_date": from_date, "to_date": to_date}


class AnalyticsEmailsQuery(AnalyticsRangeQuery):
    group_by = serializers.ChoiceField(choices=GROUP_BY, default="day", help_text=(
        "day, week (ISO weeks, starting Monday) or month."))
    tag = serializers.CharField(required=False, max_length=64, help_text="Only emails carrying this tag.")
    domain = serializers.CharField(required=False, max_length=255, help_text="Only emails from this sending domain.")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("tag") and attrs.get("domain"):
            # Counters are kept per tag and per domain, not per combination of the two.
            raise serializers.ValidationError({"domain": ["Filter by tag or by domain, not both."]})
        return attrs


AnalyticsCounts = type("AnalyticsCounts", (serializers.Serializer,), {
    "__doc__": "Event counts. bounced = hard_bounced + soft_bounced; opened excludes machine opens.",
    **{name: serializers.IntegerField() for name in OUTPUT_COUNTERS},
})


class AnalyticsRates(serializers.Serializer):
    """Fractions between 0 and 1 (rounded to 4 places); 0 when the denominator is 0."""

    delivery = serializers.FloatField(help_text="delivered / sent")
    bounce = serializers.FloatField(help_text="bounced / sent")
    complaint = serializers.FloatField(help_text="complained / delivered")
    open = serializers.FloatField(help_text="unique_opened / delivered")
    click = serializers.FloatField(help_text="unique_clicked / delivered")


AnalyticsBucket = type("AnalyticsBucket", (AnalyticsCounts,), {
    "__doc__": "One day, ISO week or month; date is its first day (a Monday for weeks).",
    "date": serializers.DateField(),
    "period": serializers.CharField(help_text="2026-05-04, 2026-W19 or 2026-05."),
})


class AnalyticsEmailsOutput(serializers.Serializer):
    from_date = serializers.DateField()
    to_date = serializers.DateField()
    group_by = serializers.CharField()
    environment = serializers.CharField()
    tag = serializers.CharField(allow_null=True, default=None)
    domain = serializers.CharField(allow_null=True, default=None)
    total = AnalyticsCounts()
    rates = AnalyticsRates()
    by_date = AnalyticsBucket(many=True)


class AnalyticsSubAccountTotals(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    total = AnalyticsCounts()
    rates = AnalyticsRates()


class AccountAnalyticsEmailsOutput(AnalyticsEmailsOutput):
    subaccounts = AnalyticsSubAccountTotals(many=True)


class AnalyticsTagOutput(serializers.Serializer):
    tag = serializers.CharField(source="value")
    total = AnalyticsCounts()
    rates = AnalyticsRates()


class AnalyticsDomainOutput(serializers.Serializer):
    domain = serializers.CharField(source="value")
    total = AnalyticsCounts()
    rates = AnalyticsRates()


class AccountUsagePeriod(serializers.Serializer):
    month = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    resets_at = serializers.DateTimeField()


class AccountUsagePlan(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class AccountUsageEmails(serializers.Serializer):
    used = serializers.IntegerField(help_text="Live emails accepted this month (the quota counter).")
    quota = serializers.IntegerField(allow_null=True, help_text="Null: unlimited.")
    remaining = serializers.IntegerField(allow_null=True)


class AccountUsageRateLimit(serializers.Serializer):
    requests_per_minute = serializers.IntegerField(help_text="The plan's limit per API key (keys may be lower).")


class AccountUsageSubAccount(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    emails = serializers.IntegerField(help_text="Live emails this sub-account sent this month.")


class AccountUsageOutput(serializers.Serializer):
    period = AccountUsagePeriod()
    plan = AccountUsagePlan()
    emails = AccountUsageEmails()
    rate_limit = AccountUsageRateLimit()
    subaccounts = AccountUsageSubAccount(many=True)
