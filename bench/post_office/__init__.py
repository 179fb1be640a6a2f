"""A minimal Django project around django-post-office, used only by bench/dispatch.py.

It runs in its own virtualenv (var/bench-postoffice-venv) and database (mailroom_bench_po):
django-post-office is not a dependency of Mailroom, and nothing here imports Mailroom code.
"""
