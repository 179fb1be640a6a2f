SCHEDULE = {
    "emails-sweep": {
        "task": "emails.sweep",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
}
