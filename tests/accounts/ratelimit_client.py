"""A second process for the rate-limit test: ``python -m tests.accounts.ratelimit_client KEY PATH N``.

Sends N requests with the key through Django's test client (same settings, same database and
Redis as the pytest process, which passes them in the environment) and prints one JSON line
per response: status and the X-RateLimit-* headers.
"""

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client

    key, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    header = "HTTP_X_ACCOUNT_APIKEY" if key.startswith("mr_acct_") else "HTTP_X_SUBACCOUNT_APIKEY"
    client = Client()
    for _ in range(count):
        response = client.get(path, **{header: key})
        print(json.dumps({
            "status": response.status_code,
            "limit": response.get("X-RateLimit-Limit"),
            "remaining": response.get("X-RateLimit-Remaining"),
            "reset": response.get("X-RateLimit-Reset"),
            "pid": os.getpid(),
        }), flush=True)


if __name__ == "__main__":
    main()
