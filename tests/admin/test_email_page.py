"""An email's admin page: timeline in order, recipients, sandboxed HTML, headers, MIME on demand."""

import html as html_lib
import re

import pytest

from emails import services
from emails.models import EmailEvent
from tests.admin.conftest import send

pytestmark = pytest.mark.django_db

HTML = ('<p onclick="alert(1)">Hi &amp; welcome <a href="https://example.com/a">go</a></p>'
        '<img src="https://tracker.example.net/x.gif"><script>alert(2)</script>')


@pytest.fixture
def delivered(tenants):
    """A test-mode email through the real pipeline: queued, claimed, simulated sent + delivered."""
    email = send(tenants.a1, environment="test", to=["delivered@simulator.mailroom.test"],
                 cc=["Carol <carol@example.com>"], subject="Your receipt", html=HTML, text="Plain receipt",
                 headers={"X-Order": "1234"}, track_clicks=True, track_opens=True,
                 attachments=[{"filename": "receipt.txt", "content": "cmVjZWlwdA==", "content_type": "text/plain"}])
    services.email_dispatch(ids=[email.pk], limit=1)
    email.refresh_from_db()
    return email


def test_the_timeline_lists_events_and_attempts_in_order(operator, delivered):
    page = operator.get(f"/admin/emails/email/{delivered.pk}/change/").content.decode()
    table = page[page.index('id="email-timeline"'):]
    table = table[:table.index("</table>")]
    kinds = re.findall(r'<tr class="timeline-(\w+)"><td>[^<]*</td><td>([^<]*)</td><td><b>([^<]*)</b>', table)

    events = list(delivered.events.order_by("timestamp", "id").values_list("type", flat=True))
    assert events[:2] == ["queued", "sent"] and "delivered" in events
    assert [what for _, _, what in kinds] == ["queued", "simulated", *events[1:]]
    assert kinds[1][:2] == ("attempt", "attempt #1")  # the attempt sits between queued and sent


def test_the_page_shows_recipients_headers_and_the_html_in_a_sandboxed_iframe(operator, delivered):
    page = operator.get(f"/admin/emails/email/{delivered.pk}/change/").content.decode()

    recipients = page[page.index('id="email-recipients"'):].split("</table>")[0]
    assert "delivered@simulator.mailroom.test" in recipients and "carol@example.com" in recipients

    iframe = re.search(r'<iframe id="email-html-preview" sandbox="" srcdoc="([^"]*)"', page)
    assert iframe, "the HTML is shown in an iframe with an empty sandbox (no scripts, no same origin)"
    document = html_lib.unescape(iframe.group(1))
    assert document.startswith('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:')
    # The sender's HTML, not the tracked copy: opening the page records no open and no click.
    assert HTML in document and "/t/o/" not in document and "/t/c/" not in document
    assert "<script>alert(2)</script>" not in page  # only inside the escaped srcdoc

    headers = page[page.index('id="email-headers"'):].split("</table>")[0]
    for name, value in (("Message-ID", html_lib.escape(delivered.message_id)), ("Subject", "Your receipt"),
                        ("X-Order", "1234"), ("X-Mailroom-Id", delivered.public_id)):
        assert f"<th>{name}</th><td><code>{value}</code></td>" in headers, name
    assert "Plain receipt" in page and "receipt.txt (text/plain, 7 bytes)" in page


def test_the_raw_mime_is_rebuilt_on_demand_with_attachments(operator, support, delivered):
    for client in (operator, support):
        response = client.get(f"/admin/emails/email/{delivered.pk}/mime/")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        raw = response.content.decode()
        assert f"Message-ID: {delivered.message_id}\r\n" in raw
        assert 'filename="receipt.txt"' in raw and "cmVjZWlwdA==" in raw
    assert operator.get("/admin/emails/email/999999/mime/").status_code == 404


def test_the_timeline_is_capped_with_a_link_to_every_event(operator, delivered, monkeypatch):
    from emails.admin import emails as emails_admin

    monkeypatch.setattr(emails_admin, "TIMELINE_LIMIT", 2)
    page = operator.get(f"/admin/emails/email/{delivered.pk}/change/").content.decode()
    assert f'First 2 events shown; <a href="/admin/emails/emailevent/?q={delivered.public_id}">all events</a>' in page
    events = operator.get(f"/admin/emails/emailevent/?q={delivered.public_id}").content.decode()
    assert events.count(f">{delivered.public_id}</a>") == EmailEvent.objects.filter(email=delivered).count()


def test_an_email_cannot_be_edited_added_or_deleted(operator, delivered):
    assert operator.post(f"/admin/emails/email/{delivered.pk}/change/", {"subject": "x"}).status_code == 403
    assert operator.get("/admin/emails/email/add/").status_code == 403
    assert operator.get(f"/admin/emails/email/{delivered.pk}/delete/").status_code == 403
    event = delivered.events.first()
    assert operator.post(f"/admin/emails/emailevent/{event.pk}/change/", {"type": "x"}).status_code == 403


def test_search_finds_an_email_by_recipient_id_message_id_and_domain(operator, tenants, delivered):
    other = send(tenants.b1, to="someone@else.example", **{"from": "B <b@bee.test>"})
    for term, expected in (("CAROL@example.com", delivered), (delivered.public_id, delivered),
                           (delivered.message_id, delivered), ("bee.test", other), ("from:b@bee.test", other),
                           (tenants.b1.account.public_id, other), (tenants.a1.subaccount.public_id, delivered)):
        page = operator.get("/admin/emails/email/", {"q": term}).content.decode()
        found = set(re.findall(r"msg_[A-Za-z0-9]+", page.split('id="result_list"')[1].split("</table>")[0]))
        assert found == {expected.public_id}, term
