"""The published schema: valid, both key schemes declared, the envelope around every answer."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    path: Path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--file", str(path))
    return yaml.safe_load(path.read_text())


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_the_schema_validates_without_warnings(tmp_path, django_db_blocker):
    # Exactly the CI command: any drf-spectacular warning (a name collision, an unresolvable
    # field) fails it, because generated clients would get a wrong or unstable schema.
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Mailroom API"


def test_both_key_headers_are_security_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["AccountApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-Account-ApiKey",
        "description": "Account key (mr_acct_...). `Authorization: Bearer <key>` is accepted too."}
    assert schemes["SubAccountApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-SubAccount-ApiKey",
        "description": "Sub-account key (mr_live_... or mr_test_...). "
                       "`Authorization: Bearer <key>` is accepted too."}


def test_account_routes_need_the_account_key_and_the_rest_the_subaccount_key(schema):
    seen = set()
    for path, method, operation in _operations(schema):
        if not path.startswith("/api/v1/") or "security" not in operation:
            continue
        expected = "AccountApiKey" if path.startswith("/api/v1/account") else "SubAccountApiKey"
        assert operation["security"] == [{expected: []}], (method, path)
        seen.add(expected)
    assert seen == {"AccountApiKey", "SubAccountApiKey"}
    assert schema["paths"]["/api/v1/api-keys"]["get"]["security"] == [{"SubAccountApiKey": []}]


def test_every_success_response_is_wrapped_in_the_envelope(schema):
    wrapped = 0
    for path, method, operation in _operations(schema):
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                body = media["schema"]
                if status.startswith("2"):
                    assert body["required"] == ["success", "data", "meta"], (method, path, status)
                    assert set(body["properties"]) == {"success", "data", "meta"}
                    assert body["properties"]["meta"] == {"$ref": "#/components/schemas/Meta"}
                    wrapped += 1
                elif status[0] in "45":
                    assert body == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)
    assert wrapped > 10


def test_every_api_operation_documents_the_error_answers(schema):
    # Exact per operation (config/api/schema.py): 404 only with an id in the path, 400/413/415 only
    # with a JSON body; tests/api/test_schema_exact.py checks the codes under each status.
    for path, method, operation in _operations(schema):
        if path.startswith("/api/v1/") and "security" in operation:
            expected = {"401", "403", "406", "429", "500"}
            expected |= {"404"} if "{" in path else set()
            expected |= {"400", "413", "415", "422"} if "requestBody" in operation else set()
            assert expected <= set(operation["responses"]), (method, path)
            headers = next(r for s, r in operation["responses"].items() if s.startswith("2")).get("headers", {})
            assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers)


def test_the_error_envelope_component_matches_the_design(schema):
    error = schema["components"]["schemas"]["ErrorEnvelope"]
    assert error["required"] == ["success", "error", "meta"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ApiError"}
    assert schema["components"]["schemas"]["ApiError"]["required"] == ["code", "message", "status", "details"]


def test_a_list_is_the_items_plus_pagination(schema):
    ok = schema["paths"]["/api/v1/account/subaccounts"]["get"]["responses"]["200"]
    data = ok["content"]["application/json"]["schema"]["properties"]["data"]
    page = schema["components"]["schemas"][data["$ref"].rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"subaccounts", "pagination"}


def test_the_schema_and_the_docs_are_served(client, db):
    assert client.get("/api/v1/schema/").status_code == 200
    as_json = client.get("/api/v1/schema/?format=json")
    assert as_json.status_code == 200 and as_json.json()["info"]["title"] == "Mailroom API"
    for page in ("/api/docs/", "/api/redoc/"):
        response = client.get(page)
        assert response.status_code == 200 and b"/api/v1/schema/" in response.content


def test_swagger_ui_and_admin_css_are_served_locally_by_whitenoise(client, db):
    import re

    docs = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', docs)
    assert "cdn.jsdelivr.net" not in docs
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    login = client.get("/admin/login/").content.decode()
    assets += re.findall(r'href="(/static/[^"]+\.css)"', login)
    assert "/static/admin/css/base.css" in assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content if response.streaming else [response.content])

