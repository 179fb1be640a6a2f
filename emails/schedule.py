SCHEDULE = {
    "emails-sweep": {  # twice a second: scheduled mail leaves within about half a second of its time
        "task": "emails.sweep",
        "schedule": 0.5,
        "options": {"expires": 5},
    },
    "emails-fan-out": {  # webhooks and counters of accepted mail's first events (emails/services/events.py)
        "task": "emails.fan_out",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    "emails-tracking-flush": {  # opens and clicks become events (emails/tracking/hits.py)
        "task": "emails.tracking_flush",
        "schedule": 2.0,
        "options": {"expires": 10},
    },
}
