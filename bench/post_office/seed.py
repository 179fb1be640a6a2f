"""Queues the benchmark's emails in django-post-office (``mail.send_many``: one bulk INSERT
per chunk), with the same sender, recipient, subject and bodies as Mailroom's seeded mail.

    python -m bench.post_office.seed --emails 10000 --domain bench-plain.example.net
"""

import argparse
import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.post_office.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, required=True)
    parser.add_argument("--domain", required=True)
    args = parser.parse_args()
    django.setup()
    from post_office import mail
    from post_office.models import Email

    # bench/dispatch.py imports only the standard library at module level: its email_item
    # gives the exact content Mailroom was handed, without Mailroom's dependencies here.
    from bench.dispatch import email_item

    for start in range(0, args.emails, 500):
        batch = []
        for i in range(start, min(start + 500, args.emails)):
            item = email_item(i, args.domain)
            batch.append({"sender": item["from"], "recipients": [item["to"]], "subject": item["subject"],
                          "message": item["text"], "html_message": item["html"],
                          "headers": {"X-Tags": json.dumps(item["tags"])}})
        mail.send_many(batch)
    print(f"queued {Email.objects.count()} emails in post_office", flush=True)


if __name__ == "__main__":
    main()
