"""DESIGN section 2: every answer is the JSON envelope with the documented status and code."""

import logging
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import assert_exact_error, assert_ok

GENERATED_ID = re.compile(r"^req_[0-9a-f]{24}$")


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/nope"), ("post", "/api/v1/nope"), ("get", "/nope"), ("get", "/api/v2/emails"),
    ("get", "/api/v1/account/subaccounts/"), ("delete", "/api/v1/api-keys/key_x/extra"),
])
def test_an_unknown_route_is_a_json_404(tenants, method, path):
    response = getattr(APIClient(), method)(path, HTTP_X_SUBACCOUNT_APIKEY=tenants.a1.live_key)
    assert_exact_error(response, 404, "not_found", "No route matches this URL.")
    assert b"<html" not in response.content.lower()


def test_an_unknown_object_is_a_404_with_its_own_message(api, tenants):
    response = api(tenants.a1.account_key).get("/api/v1/account/subaccounts/sub_doesnotexist")
    assert_exact_error(response, 404, "not_found", "Sub-account not found.")


@pytest.mark.parametrize(("key_attr", "method", "path"), [
    ("live_key", "put", "/api/v1/api-keys"),
    ("live_key", "patch", "/api/v1/api-keys"),
    ("account_key", "put", "/api/v1/account/subaccounts"),
    ("account_key", "get", "/api/v1/account/subaccounts/{sub}/suspend"),
])
def test_a_wrong_method_is_405_method_not_allowed(api, tenants, key_attr, method, path):
    path = path.format(sub=tenants.a1.subaccount.public_id)
    response = getattr(api(getattr(tenants.a1, key_attr)), method)(path, {}, format="json")
    assert_exact_error(response, 405, "method_not_allowed", f'Method "{method.upper()}" not allowed.')
    assert "Allow" in response


def test_a_wrong_method_without_a_key_is_401_first(tenants):
    # Authentication runs before the method is looked at: no route's shape leaks to strangers.
    response = APIClient().put("/api/v1/api-keys")
    assert response.status_code == 401


@pytest.mark.parametrize(("body", "message"), [
    (b'{"name": ', "Malformed JSON: Expecting value: line 1 column 10 (char 9)"),
    (b"{bad", "Malformed JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b'{"rate_limit": NaN}', "Malformed JSON: NaN is not valid JSON"),
    (b'{"name": "\xff"}', None),
])
def test_malformed_json_is_400_bad_request_and_writes_nothing(api, tenants, body, message):
    from accounts.models import ApiKey

    count = ApiKey.objects.count()
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", body, content_type="application/json")
    if message is None:
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (400, "bad_request")
        assert error["message"].startswith("Malformed JSON: ")
    else:
        assert_exact_error(response, 400, "bad_request", message)
    assert ApiKey.objects.count() == count


def test_json_that_is_not_an_object_is_422(api, tenants):
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", b"[1, 2]", content_type="application/json")
    assert_exact_error(response, 422, "validation_error", "The request is invalid.",
                       {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})


def test_a_2_mb_body_on_a_small_endpoint_is_413(api, tenants):
    from accounts.models import ApiKey

    count = ApiKey.objects.count()
    body = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", body, content_type="application/json")
    assert_exact_error(response, 413, "payload_too_large",
                       "The request body is over the 1048576 byte limit of this endpoint.")
    assert ApiKey.objects.count() == count


def test_the_body_limit_follows_the_setting(api, tenants, settings):
    settings.MAILROOM_MAX_BODY_BYTES = 64
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", {"name": "x" * 64}, format="json")
    assert_exact_error(response, 413, "payload_too_large",
                       "The request body is over the 64 byte limit of this endpoint.")
    assert_ok(api(tenants.a1.live_key).post("/api/v1/api-keys", {"name": "ok"}, format="json"), 201)


def test_a_form_body_is_415(api, tenants):
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", "name=x",
                                             content_type="application/x-www-form-urlencoded")
    assert_exact_error(response, 415, "unsupported_media_type",
                       'Unsupported media type "application/x-www-form-urlencoded" in request.')


def test_asking_for_html_gets_406_in_json(api, tenants):
    response = api(tenants.a1.live_key).get("/api/v1/api-keys", HTTP_ACCEPT="text/html")
    assert_exact_error(response, 406, "not_acceptable", "This API only answers with JSON (application/json).")
    # A browser's usual Accept (with */*) gets JSON.
    assert_ok(api(tenants.a1.live_key).get("/api/v1/api-keys", HTTP_ACCEPT="text/html,*/*;q=0.8"))


def test_an_unexpected_exception_is_500_without_a_traceback_and_logged_with_the_request_id(
        api, tenants, settings, monkeypatch, caplog):
    settings.DEBUG = False

    def boom(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("accounts.selectors.api_key_list", boom)
    with caplog.at_level(logging.ERROR, logger="mailroom.api"):
        response = api(tenants.a1.live_key).get("/api/v1/api-keys", HTTP_X_REQUEST_ID="trace-500")

    assert_exact_error(response, 500, "internal_error", "An unexpected error occurred.")
    assert response["X-Request-Id"] == "trace-500"
    assert b"hunter2" not in response.content and b"Traceback" not in response.content
    records = [r for r in caplog.records if r.name == "mailroom.api"]
    assert [r.getMessage() for r in records] == ["Unhandled error (request_id=trace-500)"]
    assert records[0].exc_info[0] is RuntimeError


def test_an_exception_outside_drf_is_500_json_too(db, settings, monkeypatch, caplog):
    settings.DEBUG = False

    def boom():
        raise RuntimeError("broker exploded")

    monkeypatch.setattr("config.views.broker_ok", boom)
    with caplog.at_level(logging.ERROR):
        response = Client(raise_request_exception=False).get("/healthz", HTTP_X_REQUEST_ID="plain-500")

    assert_exact_error(response, 500, "internal_error", "An unexpected error occurred.")
    assert b"broker exploded" not in response.content
    assert "Unhandled error (request_id=plain-500)" in [r.getMessage() for r in caplog.records]


def test_the_success_envelope_is_exact(api, tenants):
    response = api(tenants.a1.account_key).get("/api/v1/account")
    body = response.json()
    assert set(body) == {"success", "data", "meta"}
    assert body["success"] is True
    assert body["meta"] == {"request_id": response["X-Request-Id"], "timestamp": body["meta"]["timestamp"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["meta"]["timestamp"])
    assert GENERATED_ID.match(response["X-Request-Id"])
    assert body["data"]["id"] == tenants.a1.account.public_id


@pytest.mark.parametrize("path", ["/api/v1/api-keys", "/api/v1/nope", "/healthz", "/admin/login/",
                                  "/api/v1/schema/", "/api/docs/"])
def test_every_response_has_a_request_id(tenants, path):
    response = Client().get(path, HTTP_X_SUBACCOUNT_APIKEY=tenants.a1.live_key)
    assert GENERATED_ID.match(response["X-Request-Id"])


def test_each_request_gets_its_own_id(api, tenants):
    ids = {api(tenants.a1.live_key).get("/api/v1/api-keys")["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("incoming", ["abc-123_XYZ.4:5", "0f8fad5b-d9cb-469f-a165-70867728950e",
                                      "x" * 128])
def test_a_well_formed_client_request_id_is_echoed(api, tenants, incoming):
    response = api(tenants.a1.live_key).get("/api/v1/api-keys", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-Id"] == incoming
    assert response.json()["meta"]["request_id"] == incoming
    error = APIClient().get("/api/v1/api-keys", HTTP_X_REQUEST_ID=incoming)
    assert error["X-Request-Id"] == error.json()["meta"]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["has space", "x" * 129, "new\nline", "<script>", "ünïcode", ""])
def test_a_malformed_client_request_id_is_replaced(api, tenants, incoming):
    response = api(tenants.a1.live_key).get("/api/v1/api-keys", HTTP_X_REQUEST_ID=incoming)
    assert GENERATED_ID.match(response["X-Request-Id"])
    assert response.json()["meta"]["request_id"] == response["X-Request-Id"]
