from emails.models import Email
from tests.conftest import assert_error, assert_ok


def _insights(api, key, email_id):
    return {i["code"]: i for i in assert_ok(api(key).get(f"/api/v1/emails/{email_id}/insights"))["insights"]}


def test_it_warns_about_a_missing_text_part_clipping_foreign_links_and_an_unknown_domain(
        send, api, tenants, outbox_tasks):
    html = ('<p><a href="https://acme.test/account">account</a> <a href="https://tracker.example.net/x">x</a>'
            '<a href="mailto:help@acme.test">mail</a></p>' + "x" * (103 * 1024))
    data = assert_ok(send(tenants.a1.live_key, html=html, text=None), 201)
    found = _insights(api, tenants.a1.live_key, data["id"])
    assert set(found) == {"domain_not_added", "no_text_part", "html_clipped", "link_domain_mismatch"}
    assert found["link_domain_mismatch"]["details"]["hosts"] == ["tracker.example.net"]
    assert found["html_clipped"]["details"]["size"] > 102 * 1024
    assert found["no_text_part"]["severity"] == "warning"


def test_tracked_links_are_judged_by_their_original_targets(send, api, tenants, outbox_tasks):
    data = assert_ok(send(tenants.a1.live_key, html='<a href="https://shop.acme.test/">shop</a>',
                          track_clicks=True), 201)
    assert Email.objects.get(public_id=data["id"]).tracked_links.count() == 1
    found = _insights(api, tenants.a1.live_key, data["id"])
    assert "link_domain_mismatch" not in found and "no_text_part" not in found


def test_another_subaccount_gets_404(send, api, tenants, outbox_tasks):
    data = assert_ok(send(tenants.a1.live_key), 201)
    assert_error(api(tenants.b1.live_key).get(f"/api/v1/emails/{data['id']}/insights"), 404, "not_found")
