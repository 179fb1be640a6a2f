"""Speed: a typical 20 KB template with 10 variables renders at 2,000+ per second in one process."""

import time

from templates_app.rendering import compile_template, render_compiled

VARIABLE_NAMES = ["first_name", "last_name", "company", "order_id", "total", "currency", "support_email",
                  "unsubscribe_url", "login_url", "year"]


def typical_template() -> tuple[str, str, str]:
    """About 20 KB of HTML: styled markup, a few loops-free sections and 10 variables."""
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
    html = head + body + tail
    text = "Hi {{ first_name }},\nYour order {{ order_id }} totals {{ total }} {{ currency }}.\n"
    return "Your {{ company }} order {{ order_id }}", html, text


def test_a_typical_20_kb_template_renders_2000_times_a_second():
    subject, html, text = typical_template()
    assert 19 * 1024 < len(html) <= 20 * 1024
    compiled = compile_template(subject=subject, html=html, text=text)
    assert compiled.variables == sorted(VARIABLE_NAMES)
    variables = {name: f"<{name} value>" for name in VARIABLE_NAMES}
    best = 0.0
    for _ in range(3):  # best of three: a busy CI machine should not fail the build
        count, started = 0, time.perf_counter()
        while count < 1000:
            render_compiled(compiled, variables)
            count += 1
        best = max(best, count / (time.perf_counter() - started))
    print(f"{best:,.0f} renders/s")
    assert best >= 2000, f"{best:,.0f} renders/s"
