"""The rendering functions on their own: escaping, variables, the sandbox, the limits."""

import time

import pytest
from jinja2.exceptions import SecurityError

from config.api.errors import InvalidVariables
from templates_app.rendering import (
    TemplateRenderError,
    TemplateSyntaxInvalid,
    compile_template,
    render_compiled,
    render_sources,
    validate_sources,
)
from templates_app.sandbox import HTML_ENVIRONMENT, RenderLimits, render_budget


def render(subject="Hi", html=None, text=None, **variables):
    return render_sources(subject=subject, html=html, text=text, variables=variables)


def render_error(**kwargs) -> list[str]:
    with pytest.raises(TemplateRenderError) as caught:
        render(**kwargs)
    return caught.value.details["template"]


def test_it_renders_the_seed_example():
    out = render(subject="Welcome to {{company}}, {{user_name}}!", html="<p>Hi {{ user_name }}</p>",
                 text="Hi {{user_name}}\n", company="Acme", user_name="Ada")
    assert (out.subject, out.html, out.text) == ("Welcome to Acme, Ada!", "<p>Hi Ada</p>", "Hi Ada\n")


def test_a_script_variable_stays_escaped_in_html_and_raw_in_subject_and_text():
    evil = '<script>alert("x")</script> & co'
    out = render(subject="{{ v }}", html="<p>{{ v }}</p>", text="{{ v }}", v=evil)
    assert out.html == "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>"
    assert out.text == evil
    assert out.subject == evil


def test_safe_marks_trusted_html_and_escaping_applies_in_macros_and_concatenation():
    out = render(html="{{ b|safe }}{% macro m(x) %}<i>{{ x }}</i>{% endmacro %}{{ m(v) }}{{ '<' ~ v }}",
                 b="<b>bold</b>", v="<u>")
    assert out.html == "<b>bold</b><i>&lt;u&gt;</i>&lt;&lt;u&gt;"


def test_every_missing_variable_is_named_at_once():
    with pytest.raises(InvalidVariables) as caught:
        render(subject="{{ a }}", html="{{ b }}{% if show %}{{ c }}{% endif %}", text="{{ a }} {{ d }}", d=1)
    assert caught.value.details == {"variables": [
        "Missing variable 'a'", "Missing variable 'b'", "Missing variable 'c'", "Missing variable 'show'"]}
    assert caught.value.code == "invalid_variables" and caught.value.status == 422


def test_a_missing_key_of_a_nested_object_is_reported():
    with pytest.raises(InvalidVariables) as caught:
        render(text="{{ user.name }} {{ user.nickname }}", user={"name": "Ada"})
    assert caught.value.details == {"variables": ["'dict object' has no attribute 'nickname'"]}


def test_variables_guarded_with_is_defined_or_default_are_optional():
    source = "{% if coupon is defined %}Use {{ coupon }}{% endif %}|{{ name|default('there') }}|{{ n|d(1) }}"
    assert render(text=source).text == "|there|1"
    assert render(text=source, coupon="X1", name="Ada", n=2).text == "Use X1|Ada|2"
    # ...but using one unguarded on the path taken is still reported.
    with pytest.raises(InvalidVariables) as caught:
        render(text="{{ coupon|default('-') }} {{ coupon }}")
    assert caught.value.details == {"variables": ["Missing variable 'coupon'"]}


def test_subject_override_is_used_verbatim_and_the_template_subject_is_not_rendered():
    compiled = compile_template(subject="Hi {{ name }}", html=None, text="Body")
    out = render_compiled(compiled, {}, subject_override="Literal {{ name }}")
    assert (out.subject, out.text, out.html) == ("Literal {{ name }}", "Body", None)


def test_a_rendered_subject_is_one_line():
    assert render(subject="Hello {{ n }}!", n="Ada\r\nBcc: x@example.com\n").subject == \
        "Hello Ada Bcc: x@example.com !"
    assert render_error(subject="{{ n }}", n=" \n ") == ["subject: the rendered subject is empty."]
    assert render_error(subject="{{ n }}", n="x" * 999) == [
        "subject: the rendered subject is longer than 998 characters."]


def test_dict_keys_win_over_dict_methods():
    out = render(text="{% for i in order.items %}{{ i }},{% endfor %} {{ order.get('x') }}",
                 order={"items": [1, 2], "x": "y"})
    assert out.text == "1,2, y"


def test_common_template_features_work():
    source = ("{% for item in items %}{{ loop.index }}. {{ item.name|title }} x{{ item.qty }}"
              "{% if not loop.last %}, {% endif %}{% endfor %}; total {{ items|sum(attribute='qty') }}; "
              "{{ '%.2f'|format(price) }}; {{ names|join(', ') }}; {{ 'a-b'.split('-')|last|upper }}")
    out = render(text=source, items=[{"name": "tea", "qty": 2}, {"name": "cake", "qty": 1}], price=3.5,
                 names=["a", "b"])
    assert out.text == "1. Tea x2, 2. Cake x1; total 3; 3.50; a, b; B"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
])
def test_python_internals_are_refused_when_saving(source):
    check = validate_sources(text=source)
    assert not check.valid
    assert "is not allowed" in check.errors[0].message


@pytest.mark.parametrize("source", [
    "{{ x|attr('__class__') }}",
    "{{ x['__cla' ~ 'ss__'] }}",
    "{{ 'a'.format }}",
    "{{ x.format_map }}",
    "{{ [].append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ cycler|attr('reset') }}",
])
def test_python_internals_are_refused_when_rendering(source):
    with pytest.raises(TemplateRenderError) as caught:
        render(text=source, x="s")
    (message,) = caught.value.details["template"]
    assert message.startswith("text line 1: ") and "unsafe" in message


def test_the_sandbox_raises_security_errors_underneath():
    with render_budget():
        template = HTML_ENVIRONMENT.from_string("{{ x.__class__ }}")
        with pytest.raises(SecurityError):
            template.render(x="s")


def test_config_and_other_server_objects_are_not_in_scope():
    for name in ("config", "settings", "request", "os", "lipsum"):
        with pytest.raises(InvalidVariables):
            render(text=f"{{{{ {name} }}}}")


@pytest.mark.parametrize("tag", ["{% include 'x.html' %}", "{% extends 'base.html' %}",
                                 "{% import 'm.html' as m %}", "{% from 'm.html' import x %}",
                                 "{% block b %}{% endblock %}"])
def test_loading_other_templates_is_refused(tag):
    check = validate_sources(html=f"<p>\n{tag}")
    assert [(e.field, e.line) for e in check.errors] == [("html", 2)]
    assert "not supported" in check.errors[0].message


def test_syntax_errors_come_with_field_and_line():
    check = validate_sources(subject="Hi {{ name", html="<p>\n\n{{ x }\n</p>", text="{{ a|nosuchfilter }}")
    assert [(e.field, e.line) for e in check.errors] == [("subject", 1), ("html", 3), ("text", 1)]
    assert "nosuchfilter" in check.errors[2].message
    with pytest.raises(TemplateSyntaxInvalid) as caught:
        compile_template(subject="ok", html="{% for %}", text=None)
    assert list(caught.value.details) == ["html"] and caught.value.details["html"][0].startswith("line 1: ")


def test_validate_lists_variables_used_and_required():
    check = validate_sources(subject="Hi {{ first }}", html="{% for i in items %}{{ i.sku }}{% endfor %}",
                             text="{{ coupon|default('') }}{% set local = 1 %}{{ local }}{{ range(2)|list }}")
    assert check.valid
    assert check.variables == ("coupon", "first", "items")
    assert check.required_variables == ("first", "items")


def test_runtime_errors_name_field_and_line():
    assert render_error(html="<p>\n\n{{ 1 / n }}</p>", n=0) == ["html line 3: division by zero"]


@pytest.mark.parametrize("source", [
    "{{ a }}" * 70_000,
    "{{ [" + "a," * 200_000 + "a] }}",
    "{{ " + "a ~ " * 100_000 + "a }}",
    "{% if a %}x{% endif %}" * 20_000,
])
def test_a_source_too_big_to_compile_quickly_is_refused_quickly(source):
    started = time.monotonic()
    check = validate_sources(html=source)
    assert time.monotonic() - started < 1.0
    assert [e.message for e in check.errors] == [
        "More than 10,000 template tokens (names, operators, literals); use loops or split it."]


@pytest.mark.parametrize("source", [
    "{{ a }}" * 3300,
    "{{ {" + "1: a, " * 2450 + "} }}",
    "{% for i in a %}{{ i }}{% endfor %}" * 700,
])
def test_the_biggest_accepted_sources_compile_in_bounded_time(source):
    started = time.monotonic()
    assert validate_sources(html=source).valid
    assert time.monotonic() - started < 3.0


def test_a_source_over_512_kb_is_refused():
    check = validate_sources(html="x" * (512 * 1024 + 1), subject="s" * 2001)
    assert [(e.field, e.message) for e in check.errors] == [
        ("subject", "Longer than 2,000 characters."), ("html", "Larger than 512 KB.")]


HOSTILE = {
    "range over the sandbox maximum": "{% for i in range(10**9) %}x{% endfor %}",
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "looping over a long string": "{% for a in 'x' * 100000 %}{% for b in 'y' * 100000 %}{% endfor %}{% endfor %}",
    "string multiplication": "{{ 'x' * 10**9 }}",
    "list multiplication": "{{ [0] * 10**9 }}",
    "huge integers": "{{ 2 ** 100000000 }}",
    "output of a loop": "{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}",
    "captured output": "{% set s %}{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}{% endset %}x",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                       "{% endfor %}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
                       "{% endfor %}",
    "growing a list": "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}"
                      "{% endfor %}",
    "shared references": "{% set a = ['x' * 100000] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
                         "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{{ c }}",
    "exponential macros": "{% macro a() %}{{ caller() if caller else '' }}{% endmacro %}"
                          "{% macro b(n) %}{% if n %}{{ b(n - 1) }}{{ b(n - 1) }}{% endif %}{% endmacro %}{{ b(40) }}",
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "center": "{{ 'x'|center(10**9) }}",
    "str.ljust": "{{ 'x'.ljust(10**9) }}",
    "replace": "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
    "str.replace": "{{ ('x' * 100000).replace('', 'y' * 100000) }}",
    "format width": "{{ '%1000000000s'|format(1) }}",
    "percent star": "{{ '%*s' % (10**9, 'x') }}",
    "indent": "{{ ('\n' * 100000)|indent(1000) }}",
    "batch fill": "{{ [1]|batch(10**9, 'x')|list }}",
    "slice": "{{ [1]|slice(10**9)|list }}",
    "join": "{{ ['x' * 100000] * 100 | join(', ') }}",
    "str.join": "{{ ('y' * 100000).join(['x'] * 100) }}",
    "sum of lists": "{{ ([[1] * 1000] * 1000)|sum(start=[]) }}",
    "tojson indent": "{{ [1, 2]|tojson(10**9) }}",
    "wordwrap": "{{ ('x' * 1000000)|wordwrap(1) }}",
    "recursive loop": "{% for x in [1] recursive %}{{ loop(range(100000)) }}{% endfor %}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_are_stopped_quickly(source):
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as caught:
        render(text=source)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"took {elapsed:.2f} s"
    assert caught.value.code == "validation_error" and caught.value.details["template"][0].startswith("text")


def test_the_time_limit_stops_a_slow_render():
    compiled = compile_template(subject="s", html=None,
                                text="{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                                     "{% set ns.l = ns.l + [i] %}{% endfor %}")
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as caught:
        render_compiled(compiled, {}, limits=RenderLimits(time_seconds=0.05))
    assert time.monotonic() - started < 0.5
    assert caught.value.details == {"template": ["text line 1: Rendering stopped after 0.05 s."]}


def test_the_output_limit_is_per_field_and_exact():
    compiled = compile_template(subject="s", html=None, text="{% for i in range(10) %}{{ 'x' * 10 }}{% endfor %}")
    assert len(render_compiled(compiled, {}, limits=RenderLimits(max_output_chars=100)).text) == 100
    with pytest.raises(TemplateRenderError) as caught:
        render_compiled(compiled, {}, limits=RenderLimits(max_output_chars=99))
    assert caught.value.details == {"template": ["text: The output would be longer than 99 characters."]}


def test_big_legitimate_data_renders():
    items = [{"name": f"item {i}", "price": i * 1.5} for i in range(5000)]
    out = render(html="<ul>{% for i in items %}<li>{{ i.name }}: {{ '%.2f'|format(i.price) }}</li>{% endfor %}</ul>",
                 items=items)
    assert out.html.count("<li>") == 5000
