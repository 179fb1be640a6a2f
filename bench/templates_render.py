"""Template rendering speed: a typical 20 KB template with 10 variables, in one process.

    .venv/bin/python bench/templates_render.py

Baseline in the same run: the same template rendered by a plain (unsandboxed, unbudgeted)
Jinja2 Environment, which is what the sandbox and its budgets cost against.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import jinja2  # noqa: E402

from templates_app.rendering import compile_template, render_compiled  # noqa: E402

VARIABLE_NAMES = ["first_name", "last_name", "company", "order_id", "total", "currency", "support_email",
                  "unsubscribe_url", "login_url", "year"]


def typical_template() -> tuple[str, str, str]:
    """About 20 KB of HTML: styled markup, loop-free sections and 10 variables."""
    row = ('<tr><td style="padding:8px 16px;font-family:Helvetica,Arial,sans-serif;font-size:14px;'
           'color:#333333;line-height:20px">Lorem ipsum dolor sit amet, consectetur adipiscing elit, '
           'sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</td></tr>\n')
    head = ('<!doctype html><html><head><meta charset="utf-8"><title>{{ company }}</title></head><body>'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">\n'
            '<tr><td><h1>Hi {{ first_name }} {{ last_name }},</h1></td></tr>\n'
            '<tr><td>Your order {{ order_id }} totals {{ total }} {{ currency }}.</td></tr>\n')
    tail = ('<tr><td>Questions? Write to {{ support_email }} or <a href="{{ login_url }}">sign in</a>.</td></tr>\n'
            '<tr><td><a href="{{ unsubscribe_url }}">Unsubscribe</a> &copy; {{ year }} {{ company }}</td></tr>'
            '</table></body></html>\n')
    body = row * ((20 * 1024 - len(head) - len(tail)) // len(row))
    text = "Hi {{ first_name }},\nYour order {{ order_id }} totals {{ total }} {{ currency }}.\n"
    return "Your {{ company }} order {{ order_id }}", head + body + tail, text


def rate(render, seconds: float = 2.0) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        render()
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    subject, html, text = typical_template()
    variables = {name: f"<{name} value>" for name in VARIABLE_NAMES}
    compiled = compile_template(subject=subject, html=html, text=text)
    plain = jinja2.Environment(autoescape=True)
    plain_text = jinja2.Environment(autoescape=False)
    parts = (plain_text.from_string(subject), plain.from_string(html), plain_text.from_string(text))
    ours = rate(lambda: render_compiled(compiled, variables))
    baseline = rate(lambda: [p.render(**variables) for p in parts])
    print("| renderer | renders/s |\n|---|---|")
    print(f"| plain jinja2.Environment (baseline) | {baseline:,.0f} |")
    print(f"| Mailroom sandbox with budgets | {ours:,.0f} |")
    print(f"\nsandbox / baseline = {ours / baseline:.0%}; target >= 2,000 renders/s")


if __name__ == "__main__":
    main()
