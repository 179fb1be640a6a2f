"""Beat entries of the domains app (merged by config/settings.py; no model imports here)."""

SCHEDULE = {
    # Every few minutes, re-check the domains that are due: verified ones daily, unverified
    # ones every 15 minutes for 72 hours (domains/services.py says when each is next due).
    "domains-recheck-due": {
        "task": "domains.recheck_due",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
}
