"""``template_render_for_send``: what the sending pipeline calls at accept time."""

import dataclasses

import pytest

from config.api.errors import InvalidVariables, TemplateNotFound
from templates_app import services
from templates_app.models import Template, TemplateVersion
from templates_app.rendering import (
    COMPILED_CACHE,
    CompiledTemplateCache,
    RenderedTemplate,
    TemplateRenderError,
    compile_template,
)
from tests.conftest import assert_ok

pytestmark = pytest.mark.django_db

VARIABLES = {"company": "Acme", "user_name": "<Ada>"}


def test_it_renders_by_id_or_name(tenants, create_template):
    created = create_template(tenants.a1)
    for ref in (created["id"], "welcome"):
        rendered = services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref=ref,
                                                     variables=VARIABLES)
        assert rendered == RenderedTemplate(
            template_id=created["id"], template_version=1, subject="Welcome to Acme, <Ada>!",
            html="<h1>Welcome to Acme, &lt;Ada&gt;!</h1>", text="Welcome to Acme, <Ada>!\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rendered.subject = "x"


def test_the_subject_override_replaces_the_templates_subject(tenants, create_template):
    create_template(tenants.a1, subject="Hi {{ only_in_subject }}")
    rendered = services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                                 variables=VARIABLES, subject_override="Your receipt")
    assert rendered.subject == "Your receipt"


def test_a_text_only_template_has_no_html(tenants, create_template):
    create_template(tenants.a1, html=..., text="Hi {{ user_name }}")
    rendered = services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                                 variables=VARIABLES)
    assert (rendered.html, rendered.text) == (None, "Hi <Ada>")


def test_every_missing_variable_is_named(tenants, create_template):
    create_template(tenants.a1, text="{{ first }} {{ last }} {{ user_name }}")
    with pytest.raises(InvalidVariables) as caught:
        services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                          variables={"user_name": "x"})
    assert (caught.value.code, caught.value.status) == ("invalid_variables", 422)
    assert caught.value.details == {"variables": [
        "Missing variable 'company'", "Missing variable 'first'", "Missing variable 'last'"]}


def test_variables_must_be_an_object(tenants, create_template):
    create_template(tenants.a1)
    with pytest.raises(InvalidVariables) as caught:
        services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                          variables=["company"])
    assert caught.value.details == {"variables": ["Must be an object."]}


def test_a_hostile_template_is_a_422_not_a_hung_worker(tenants, create_template):
    create_template(tenants.a1, text="{{ 'x' * 10**9 }}")
    with pytest.raises(TemplateRenderError) as caught:
        services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                          variables=VARIABLES)
    assert caught.value.details == {"template": ["text line 1: A value would be longer than 1,048,576 characters."]}


@pytest.mark.parametrize("ref", ["nope", "tpl_000000000000000000000000", "", "x" * 300])
def test_an_unknown_template_is_template_not_found(tenants, ref):
    with pytest.raises(TemplateNotFound) as caught:
        services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref=ref, variables={})
    assert (caught.value.code, caught.value.status) == ("template_not_found", 422)
    assert caught.value.details == {"template_id": [f"No template with id or name {ref!r}."]}


def test_another_subaccounts_template_is_not_found_by_id_or_name(tenants, create_template):
    theirs = create_template(tenants.b1)
    sibling = create_template(tenants.a2, name="sibling")
    for ref in (theirs["id"], sibling["id"], "sibling"):
        with pytest.raises(TemplateNotFound):
            services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref=ref,
                                              variables=VARIABLES)


def test_a_deleted_template_is_not_found(api, tenants, create_template):
    created = create_template(tenants.a1)
    assert api(tenants.a1.live_key).delete("/api/v1/templates/welcome").status_code == 204
    for ref in (created["id"], "welcome"):
        with pytest.raises(TemplateNotFound):
            services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref=ref,
                                              variables=VARIABLES)


def test_an_update_is_used_by_the_next_send(api, tenants, create_template):
    create_template(tenants.a1)
    first = services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                              variables=VARIABLES)
    assert_ok(api(tenants.a1.live_key).patch("/api/v1/templates/welcome", {"subject": "v2 for {{ user_name }}"},
                                             format="json"))
    second = services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                               variables=VARIABLES)
    assert (first.template_version, first.subject) == (1, "Welcome to Acme, <Ada>!")
    assert (second.template_version, second.subject) == (2, "v2 for <Ada>")


def test_a_batch_costs_one_lookup_and_one_compile(tenants, create_template, django_assert_num_queries):
    create_template(tenants.a1)
    with django_assert_num_queries(2):  # the lookup, then the version's sources to compile
        services.template_render_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome",
                                          variables=VARIABLES)
    with django_assert_num_queries(0):
        results = [services.template_render_for_send(
            subaccount=tenants.a1.subaccount, template_ref="welcome",
            variables={"company": "Acme", "user_name": f"user {i}"}) for i in range(500)]
    assert results[499].subject == "Welcome to Acme, user 499!" and len(COMPILED_CACHE) == 1
    prepared = services.template_prepare_for_send(subaccount=tenants.a1.subaccount, template_ref="welcome")
    with django_assert_num_queries(0):
        assert prepared.render(VARIABLES) == services.template_render_for_send(
            subaccount=tenants.a1.subaccount, template_ref="welcome", variables=VARIABLES)


def test_a_change_made_elsewhere_is_seen_once_the_lookup_expires(tenants, create_template, monkeypatch,
                                                                  django_assert_num_queries):
    create_template(tenants.a1)
    render = lambda: services.template_render_for_send(  # noqa: E731
        subaccount=tenants.a1.subaccount, template_ref="welcome", variables=VARIABLES)
    assert render().template_version == 1
    # Another process stores version 2 (this process's lookups are not told).
    template = Template.objects.get(name="welcome")
    template.current_version = TemplateVersion.objects.create(template=template, number=2, subject="v2", text="v2")
    template.save()
    assert render().template_version == 1
    monkeypatch.setattr(services, "SEND_LOOKUP_TTL_SECONDS", 0.0)
    services.forget_send_lookups()
    with django_assert_num_queries(2):
        rendered = render()
    assert (rendered.template_version, rendered.subject) == (2, "v2")


def test_the_cache_is_bounded_by_entries_and_size():
    compiled = compile_template(subject="s", html=None, text="x" * 100)
    cache = CompiledTemplateCache(max_entries=3, max_weight=250)
    for version in (1, 2):
        cache.put(("tpl_a", version), compiled)
    assert len(cache) == 2
    cache.put(("tpl_a", 3), compiled)  # 303 characters > 250: the oldest goes
    assert len(cache) == 2 and cache.get(("tpl_a", 1)) is None and cache.get(("tpl_a", 3)) is compiled
    cache = CompiledTemplateCache(max_entries=2)
    for version in (1, 2, 3):
        cache.put(("tpl_a", version), compiled)
    assert cache.get(("tpl_a", 1)) is None and len(cache) == 2
