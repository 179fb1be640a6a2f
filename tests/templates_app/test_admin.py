"""The operator's admin for templates: versions inline, a sandboxed preview, soft delete only."""

import json
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model

from templates_app.models import Template
from tests.conftest import assert_ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db, client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "a-long-password-1")
    client.force_login(user)
    return client


@pytest.fixture
def welcome(api, tenants, create_template):
    create_template(tenants.a1)
    assert_ok(api(tenants.a1.live_key).patch("/api/v1/templates/welcome", {"subject": "Second {{ company }}"},
                                             format="json"))
    return Template.objects.get(name="welcome")


def test_the_list_shows_and_searches_templates(admin_client, tenants, create_template, welcome):
    create_template(tenants.b1, name="invoice")
    page = admin_client.get("/admin/templates_app/template/?q=welcome").content.decode()
    assert welcome.public_id in page and "invoice" not in page
    page = admin_client.get("/admin/templates_app/template/").content.decode()
    assert "invoice" in page and f"/admin/templates_app/template/{welcome.pk}/preview/" in page


def test_the_change_page_shows_the_versions_read_only(admin_client, welcome):
    response = admin_client.get(f"/admin/templates_app/template/{welcome.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Second {{ company }}" in page and "Welcome to {{company}}, {{user_name}}!" in page
    assert f"/admin/templates_app/template/{welcome.pk}/preview/?version=1" in page
    assert 'name="versions-0-subject"' not in page  # nothing editable
    assert admin_client.get("/admin/templates_app/template/add/").status_code == 403
    assert admin_client.get(f"/admin/templates_app/template/{welcome.pk}/delete/").status_code == 403


def test_the_preview_renders_sample_variables_into_a_sandboxed_iframe(admin_client, welcome):
    response = admin_client.get(f"/admin/templates_app/template/{welcome.pk}/preview/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Second [company]" in page
    # The rendered HTML is only ever inside srcdoc (attribute-escaped) of a sandboxed iframe.
    assert ('<iframe sandbox="" srcdoc="&lt;h1&gt;Welcome to [company], [user_name]!&lt;/h1&gt;"' in page)
    assert "<h1>Welcome to" not in page


def test_the_preview_takes_variables_and_a_version(admin_client, welcome):
    query = urlencode({"version": 1, "variables": json.dumps({"company": "Acme", "user_name": "<script>x"})})
    page = admin_client.get(f"/admin/templates_app/template/{welcome.pk}/preview/?{query}").content.decode()
    assert "Welcome to Acme, &lt;script&gt;x!" in page  # the subject, escaped by the admin page
    assert "&amp;lt;script&amp;gt;x" in page  # the HTML body: escaped by the template, then into srcdoc
    assert "<script>x" not in page


def test_the_preview_reports_problems(admin_client, tenants, create_template, welcome):
    url = f"/admin/templates_app/template/{welcome.pk}/preview/"
    page = admin_client.get(url + "?" + urlencode({"variables": "{}"})).content.decode()
    assert "Missing variable &#x27;company&#x27;" in page and "<iframe" not in page
    page = admin_client.get(url + "?" + urlencode({"variables": "[1"})).content.decode()
    assert "Variables:" in page
    create_template(tenants.a1, name="loop", subject="s", html=...,
                    text="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    loop = Template.objects.get(name="loop")
    page = admin_client.get(f"/admin/templates_app/template/{loop.pk}/preview/").content.decode()
    assert "Rendering stopped after" in page


def test_the_delete_action_soft_deletes(admin_client, api, tenants, welcome):
    response = admin_client.post("/admin/templates_app/template/",
                                 {"action": "soft_delete", "_selected_action": [welcome.pk]})
    assert response.status_code == 302
    welcome.refresh_from_db()
    assert welcome.deleted_at is not None and welcome.versions.count() == 2
    assert api(tenants.a1.live_key).get("/api/v1/templates/welcome").status_code == 404


def test_the_version_admin_is_read_only(admin_client, welcome):
    version = welcome.current_version
    response = admin_client.get(f"/admin/templates_app/templateversion/{version.pk}/change/")
    assert response.status_code == 200 and "Second {{ company }}" in response.content.decode()
    assert admin_client.get("/admin/templates_app/templateversion/add/").status_code == 403
