from tests.conftest import assert_ok


def test_it_returns_the_calling_account(api, tenants):
    data = assert_ok(api(tenants.a1.account_key).get("/api/v1/account"))
    assert data["id"] == tenants.a1.account.public_id
    assert data["plan"]["code"] == "free"
