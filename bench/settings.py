"""Benchmark settings: the product's settings plus the baseline view's URL."""

from config.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
