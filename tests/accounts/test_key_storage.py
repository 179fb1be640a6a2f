"""Only a display prefix and a SHA-256 digest of a key are ever stored."""

import hashlib

from django.db import connection

from accounts.models import ApiKey
from tests.conftest import assert_ok


def test_the_database_holds_no_full_key_after_creating_ten(api, tenants):
    raw_keys = []
    account = api(tenants.a1.account_key)
    sub_path = f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}/api-keys"
    for n in range(4):
        raw_keys.append(assert_ok(account.post("/api/v1/account/api-keys", {"name": f"acct {n}"},
                                               format="json"), 201)["key"])
        raw_keys.append(assert_ok(account.post(sub_path, {"environment": "test"}, format="json"), 201)["key"])
    for n in range(2):
        raw_keys.append(assert_ok(api(tenants.a1.live_key).post("/api/v1/api-keys", {"name": f"own {n}"},
                                                                format="json"), 201)["key"])
    assert len(raw_keys) == len(set(raw_keys)) == 10
    for raw in raw_keys:
        assert_ok(api(raw).get("/api/v1/account" if raw.startswith("mr_acct_") else "/api/v1/api-keys"))

    # Every column of every key row, read raw from the table (not through the model).
    table = ApiKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        rows = cursor.fetchall()
        columns = [c[0] for c in cursor.description]
    stored = "\n".join(repr(value) for row in rows for value in row)
    for raw in raw_keys:
        secret = raw.split("_", 2)[2]
        assert raw not in stored
        assert secret not in stored
        assert secret[12:] not in stored  # not even the part after the display prefix

    by_digest = {row[columns.index("digest")]: row for row in rows}
    for raw in raw_keys:
        row = by_digest[hashlib.sha256(raw.encode()).hexdigest()]
        assert row[columns.index("prefix")] == raw[:12]


def test_a_created_key_is_never_shown_again(api, tenants):
    created = assert_ok(api(tenants.a1.live_key).post("/api/v1/api-keys", {}, format="json"), 201)
    listing = api(tenants.a1.live_key).get("/api/v1/api-keys").content.decode()
    account_listing = api(tenants.a1.account_key).get(
        f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}/api-keys").content.decode()
    for text in (listing, account_listing):
        assert created["key"] not in text
        assert created["prefix"] in text
        assert hashlib.sha256(created["key"].encode()).hexdigest() not in text
