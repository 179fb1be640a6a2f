import pytest

from templates_app.rendering import COMPILED_CACHE
from templates_app.services import forget_send_lookups
from tests.conftest import assert_ok

WELCOME = {
    "name": "welcome",
    "subject": "Welcome to {{company}}, {{user_name}}!",
    "html": "<h1>Welcome to {{company}}, {{user_name}}!</h1>",
    "text": "Welcome to {{company}}, {{user_name}}!\n",
}


@pytest.fixture(autouse=True)
def _empty_process_caches():
    COMPILED_CACHE.clear()
    forget_send_lookups()
    yield
    COMPILED_CACHE.clear()
    forget_send_lookups()


@pytest.fixture
def create_template(api):
    """``create_template(tenant, **fields)`` creates one through the API and returns its data."""

    def create(tenant, **fields) -> dict:
        body = {**WELCOME, **fields}
        body = {key: value for key, value in body.items() if value is not ...}
        return assert_ok(api(tenant.live_key).post("/api/v1/templates", body, format="json"), 201)

    return create
