"""The template API: CRUD, versions, render, validate, scopes and tenant isolation."""

import pytest

from templates_app.models import Template, TemplateVersion
from tests.conftest import assert_error, assert_ok
from tests.factories import make_key
from tests.templates_app.conftest import WELCOME

pytestmark = pytest.mark.django_db

TEMPLATE_KEYS = {"id", "name", "subject", "html", "text", "version", "variables", "created_at", "updated_at"}


def test_it_creates_a_template_as_version_1(api, tenants, create_template):
    data = create_template(tenants.a1)
    assert set(data) == TEMPLATE_KEYS
    assert data["id"].startswith("tpl_") and len(data["id"]) == 28
    assert (data["name"], data["subject"], data["html"], data["text"]) == (
        "welcome", WELCOME["subject"], WELCOME["html"], WELCOME["text"])
    assert (data["version"], data["variables"]) == (1, ["company", "user_name"])
    template = Template.objects.get(public_id=data["id"])
    assert template.subaccount == tenants.a1.subaccount
    assert list(template.versions.values_list("number", flat=True)) == [1]


def test_html_or_text_alone_is_enough_and_blank_means_absent(tenants, create_template):
    assert create_template(tenants.a1, name="t", html=..., text="Hi")["html"] is None
    assert create_template(tenants.a1, name="h", html="<p>Hi</p>", text="")["text"] is None


def test_bad_input_is_422_with_field_details_and_nothing_is_stored(api, tenants):
    client = api(tenants.a1.live_key)
    error = assert_error(client.post("/api/v1/templates", {
        "name": "tpl_sneaky", "subject": "Hi {{ name", "html": "<p>{% for x in y %}</p>", "text": None,
    }, format="json"), 422, "validation_error")
    assert set(error["details"]) == {"name", "subject", "html"}
    assert error["details"]["subject"] == ["line 1: unexpected end of template, expected 'end of print statement'."]
    assert error["details"]["html"][0].startswith("line 1: Unexpected end of template.")
    error = assert_error(client.post("/api/v1/templates", {"name": "x", "subject": "s"}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"html": ["A template needs html or text (or both)."]}
    error = assert_error(client.post("/api/v1/templates", {"name": "x", "subject": "s", "html": "{% include 'a' %}"},
                                     format="json"), 422, "validation_error")
    assert error["details"] == {"html": [
        "line 1: {% include %} is not supported: templates cannot load other templates."]}
    for name in ("validate", "has space", "a/b", "-x", "x" * 101, ""):
        error = assert_error(client.post("/api/v1/templates", {**WELCOME, "name": name}, format="json"),
                             422, "validation_error")
        assert list(error["details"]) == ["name"], name
    assert not Template.objects.exists() and not TemplateVersion.objects.exists()


def test_a_body_over_512_kb_is_refused(api, tenants):
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/templates", {
        **WELCOME, "html": "x" * (512 * 1024 + 1)}, format="json"), 422, "validation_error")
    assert error["details"] == {"html": ["Larger than 512 KB."]}


def test_a_duplicate_name_is_409_but_other_subaccounts_may_reuse_it(api, tenants, create_template):
    create_template(tenants.a1)
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/templates", WELCOME, format="json"),
                         409, "conflict")
    assert error["details"] == {"name": ["Already exists."]}
    create_template(tenants.a2)
    create_template(tenants.b1)
    assert Template.objects.count() == 3


def test_get_by_id_or_by_name(api, tenants, create_template):
    created = create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    assert assert_ok(client.get(f"/api/v1/templates/{created['id']}")) == created
    assert assert_ok(client.get("/api/v1/templates/welcome")) == created


def test_the_list_is_paginated_newest_first_without_bodies(api, tenants, create_template):
    for name in ("one", "two", "three"):
        create_template(tenants.a1, name=name)
    data = assert_ok(api(tenants.a1.live_key).get("/api/v1/templates?limit=2"))
    assert [t["name"] for t in data["templates"]] == ["three", "two"]
    assert set(data["templates"][0]) == TEMPLATE_KEYS - {"html", "text"}
    assert data["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}


def test_updates_keep_every_version(api, tenants, create_template):
    created = create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    v2 = assert_ok(client.patch(f"/api/v1/templates/{created['id']}", {"subject": "Hello {{ first }}"},
                                format="json"))
    assert (v2["version"], v2["subject"], v2["html"], v2["variables"]) == (
        2, "Hello {{ first }}", WELCOME["html"], ["company", "first", "user_name"])
    v3 = assert_ok(client.patch("/api/v1/templates/welcome", {"html": None, "text": "Just text"}, format="json"))
    assert (v3["version"], v3["html"], v3["text"]) == (3, None, "Just text")

    versions = assert_ok(client.get("/api/v1/templates/welcome/versions"))
    assert versions["pagination"] == {"total": 3, "limit": 20, "offset": 0, "has_more": False}
    assert [(v["version"], v["subject"], v["html"], v["text"]) for v in versions["versions"]] == [
        (3, "Hello {{ first }}", None, "Just text"),
        (2, "Hello {{ first }}", WELCOME["html"], WELCOME["text"]),
        (1, WELCOME["subject"], WELCOME["html"], WELCOME["text"]),
    ]
    assert set(versions["versions"][0]) == {"version", "subject", "html", "text", "variables", "created_at"}


def test_renaming_alone_is_not_a_new_version(api, tenants, create_template):
    created = create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    renamed = assert_ok(client.patch("/api/v1/templates/welcome", {"name": "hello", "subject": WELCOME["subject"]},
                                     format="json"))
    assert (renamed["name"], renamed["version"]) == ("hello", 1)
    assert_error(client.get("/api/v1/templates/welcome"), 404, "not_found")
    hello = assert_ok(client.get("/api/v1/templates/hello"))
    assert hello["id"] == created["id"]
    # Sending the same content again is not a change: no version, no write.
    same = assert_ok(client.patch("/api/v1/templates/hello", {"text": WELCOME["text"], "html": WELCOME["html"]},
                                  format="json"))
    assert same == hello


def test_an_update_that_breaks_the_template_changes_nothing(api, tenants, create_template):
    create_template(tenants.a1)
    create_template(tenants.a1, name="other")
    client = api(tenants.a1.live_key)
    error = assert_error(client.patch("/api/v1/templates/welcome", {"text": "{{ x }"}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"text": ["line 1: unexpected '}'"]}
    error = assert_error(client.patch("/api/v1/templates/welcome", {"html": None, "text": None}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"html": ["A template needs html or text (or both)."]}
    assert_error(client.patch("/api/v1/templates/welcome", {"name": "other"}, format="json"), 409, "conflict")
    template = Template.objects.get(name="welcome")
    assert template.versions.count() == 1 and template.current_version.number == 1


def test_delete_makes_it_404_frees_the_name_and_keeps_the_versions(api, tenants, create_template):
    created = create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    assert_ok(client.patch("/api/v1/templates/welcome", {"text": "v2"}, format="json"))
    response = client.delete(f"/api/v1/templates/{created['id']}")
    assert response.status_code == 204
    for path in (f"/api/v1/templates/{created['id']}", "/api/v1/templates/welcome",
                 "/api/v1/templates/welcome/versions"):
        assert_error(client.get(path), 404, "not_found")
    assert_error(client.delete("/api/v1/templates/welcome"), 404, "not_found")
    assert assert_ok(client.get("/api/v1/templates"))["templates"] == []
    again = create_template(tenants.a1)
    assert again["id"] != created["id"] and again["version"] == 1
    # The history an email's template_id + template_version point at is still there.
    old = Template.objects.get(public_id=created["id"])
    assert old.deleted_at is not None
    assert list(old.versions.values_list("number", "text")) == [(2, "v2"), (1, WELCOME["text"])]


def test_render_previews_with_variables_and_sends_nothing(api, tenants, create_template):
    created = create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    data = assert_ok(client.post("/api/v1/templates/welcome/render",
                                 {"variables": {"company": "Acme", "user_name": "<script>x</script>"}}, format="json"))
    assert data == {
        "template_id": created["id"], "template_version": 1,
        "subject": "Welcome to Acme, <script>x</script>!",
        "html": "<h1>Welcome to Acme, &lt;script&gt;x&lt;/script&gt;!</h1>",
        "text": "Welcome to Acme, <script>x</script>!\n",
    }
    assert_ok(client.patch("/api/v1/templates/welcome", {"subject": "v2 {{ company }}"}, format="json"))
    old = assert_ok(client.post("/api/v1/templates/welcome/render",
                                {"variables": {"company": "A", "user_name": "B"}, "version": 1}, format="json"))
    assert (old["template_version"], old["subject"]) == (1, "Welcome to A, B!")
    assert_error(client.post("/api/v1/templates/welcome/render", {"version": 9}, format="json"), 404, "not_found")


def test_render_names_every_missing_variable(api, tenants, create_template):
    create_template(tenants.a1)
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/templates/welcome/render", {}, format="json"),
                         422, "invalid_variables")
    assert error["details"] == {"variables": ["Missing variable 'company'", "Missing variable 'user_name'"]}
    assert error["message"] == ("The template could not be rendered: Missing variable 'company'; "
                                "Missing variable 'user_name'.")


def test_render_reports_a_hostile_template_without_hanging(api, tenants, create_template):
    create_template(tenants.a1, name="loop", subject="s", html=..., text="{% for i in range(100000) %}{% for j in range(100000) %}"
                                                  "{% endfor %}{% endfor %}")
    error = assert_error(api(tenants.a1.live_key).post("/api/v1/templates/loop/render", {}, format="json"),
                         422, "validation_error")
    assert error["details"]["template"][0].startswith("text line 1: Rendering stopped after")


def test_render_refuses_sandbox_escapes(api, tenants, create_template):
    client = api(tenants.a1.live_key)
    create_template(tenants.a1, name="cfg", subject="s", html=..., text="{{ config }}")
    error = assert_error(client.post("/api/v1/templates/cfg/render", {}, format="json"), 422, "invalid_variables")
    assert error["details"] == {"variables": ["Missing variable 'config'"]}
    create_template(tenants.a1, name="attr", subject="s", html=..., text="{{ v|attr('__class__') }}")
    error = assert_error(client.post("/api/v1/templates/attr/render", {"variables": {"v": "s"}}, format="json"),
                         422, "validation_error")
    assert error["details"] == {"template": ["text line 1: access to attribute '__class__' of 'str' object is unsafe."]}
    error = assert_error(client.post("/api/v1/templates", {**WELCOME, "name": "cls", "text": "{{ ''.__class__ }}"},
                                     format="json"), 422, "validation_error")
    assert error["details"] == {"text": ["line 1: Access to '__class__' is not allowed."]}


def test_validate_reports_errors_with_lines_and_the_variables(api, tenants):
    client = api(tenants.a1.live_key)
    data = assert_ok(client.post("/api/v1/templates/validate", {
        "subject": "Hi {{ first_name }}",
        "html": "<p>{{ company }}</p>\n<p>{% if vip %}VIP{% endfi %}</p>",
        "text": "{% if coupon is defined %}{{ coupon }}{% endif %}",
    }, format="json"))
    assert data == {
        "valid": False,
        "errors": [{"field": "html", "line": 2,
                    "message": "Encountered unknown tag 'endfi'. Jinja was looking for the following tags: "
                               "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'."}],
        "variables": ["coupon", "first_name"],
        "required_variables": ["first_name"],
    }
    ok = assert_ok(client.post("/api/v1/templates/validate", {"text": "{% include 'x' %}"}, format="json"))
    assert ok["valid"] is False and ok["errors"][0]["line"] == 1
    ok = assert_ok(client.post("/api/v1/templates/validate", {"text": "Hi {{ a.b }}"}, format="json"))
    assert ok == {"valid": True, "errors": [], "variables": ["a"], "required_variables": ["a"]}
    error = assert_error(client.post("/api/v1/templates/validate", {}, format="json"), 422, "validation_error")
    assert error["details"] == {"non_field_errors": ["Give at least one of subject, html, text."]}
    assert not Template.objects.exists()


def test_validate_is_not_taken_for_a_template_id(api, tenants, create_template):
    create_template(tenants.a1)
    client = api(tenants.a1.live_key)
    assert_error(client.get("/api/v1/templates/validate"), 405, "method_not_allowed")
    assert_error(client.post("/api/v1/templates/welcome", {}, format="json"), 405, "method_not_allowed")


def test_another_subaccounts_template_is_404_by_id_and_by_name_and_not_listed(api, tenants, create_template):
    theirs = create_template(tenants.b1, name="secret")
    sibling = create_template(tenants.a2, name="sibling")
    client = api(tenants.a1.live_key)
    for other in (theirs, sibling):
        for ref in (other["id"], other["name"]):
            assert_error(client.get(f"/api/v1/templates/{ref}"), 404, "not_found")
            assert_error(client.get(f"/api/v1/templates/{ref}/versions"), 404, "not_found")
            assert_error(client.post(f"/api/v1/templates/{ref}/render", {}, format="json"), 404, "not_found")
            assert_error(client.patch(f"/api/v1/templates/{ref}", {"text": "x"}, format="json"), 404, "not_found")
            assert_error(client.delete(f"/api/v1/templates/{ref}"), 404, "not_found")
    assert assert_ok(client.get("/api/v1/templates"))["templates"] == []
    assert Template.objects.filter(deleted_at__isnull=True).count() == 2
    assert TemplateVersion.objects.count() == 2


def test_scopes(api, tenants, create_template):
    create_template(tenants.a1)
    account, sub = tenants.a1.account, tenants.a1.subaccount
    reader = api(make_key(account=account, subaccount=sub, scopes=["emails:read"]))
    writer = api(make_key(account=account, subaccount=sub, scopes=["templates:write"]))
    sender = api(make_key(account=account, subaccount=sub, scopes=["emails:send"]))
    for client in (reader, writer):
        assert_ok(client.get("/api/v1/templates"))
        assert_ok(client.get("/api/v1/templates/welcome"))
        assert_ok(client.get("/api/v1/templates/welcome/versions"))
        assert_ok(client.post("/api/v1/templates/welcome/render", {"variables": {"company": "a", "user_name": "b"}},
                              format="json"))
        assert_ok(client.post("/api/v1/templates/validate", {"text": "x"}, format="json"))
    assert_error(reader.post("/api/v1/templates", {**WELCOME, "name": "n"}, format="json"), 403, "authorization_error")
    assert_error(reader.patch("/api/v1/templates/welcome", {"text": "x"}, format="json"), 403, "authorization_error")
    assert_error(reader.delete("/api/v1/templates/welcome"), 403, "authorization_error")
    assert_ok(writer.post("/api/v1/templates", {**WELCOME, "name": "n"}, format="json"), 201)
    assert_error(sender.get("/api/v1/templates"), 403, "authorization_error")
    assert_error(api(tenants.a1.account_key).get("/api/v1/templates"), 401, "authentication_error")
