"""Beat entries of the webhooks app (merged by config/settings.py). No model imports here."""

SCHEDULE = {
    # Finds due deliveries (first attempts whose publish was lost, and every retry) and
    # enqueues one task per endpoint. ``expires`` drops sweeps that a busy worker did not
    # start in time instead of piling them up.
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 5.0, "options": {"expires": 5}},
}
