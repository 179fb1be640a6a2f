"""Accepting mail (DESIGN section 4, steps 1-5): validate, render, store, enqueue after commit."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import SubAccount
from config.api.errors import ApplicationError, Conflict, QuotaExceeded, RecipientSuppressed
from config.ids import new_public_id
from emails.models import (
    Email,
    EmailStatus,
    Environment,
    RecipientKind,
)
from emails.services.quota import quota_remaining
from emails.services.store import PreparedEmail, SuppressionsChanged, emails_store
from emails.services.suppressions import suppressed_addresses
from emails.services.wake import Waker
from emails.tracking.bodies import TrackingOptions, tracked_html, tracking_options
from emails.validation import Address, SendRequest, send_request_parse

logger = logging.getLogger(__name__)


class _SendContext:
    """Per-call caches so a batch of 500 asks the database once per distinct question."""

    def __init__(self, subaccount: SubAccount, environment: str):
        self.subaccount = subaccount
        self.environment = environment
        self.checked_domains: dict[str, ApplicationError | None] = {}
        self.suppressed: set[str] = set()
        self.tracking: dict[tuple, TrackingOptions] = {}

    def tracking_options(self, request: SendRequest) -> TrackingOptions:
        key = (request.sender.domain, request.track_opens, request.track_clicks)
        if key not in self.tracking:
            self.tracking[key] = tracking_options(subaccount=self.subaccount, from_domain=request.sender.domain,
                                                  track_opens=request.track_opens,
                                                  track_clicks=request.track_clicks)
        return self.tracking[key]

    def check_domain(self, domain: str) -> None:
        if domain not in self.checked_domains:
            from domains.services import domain_check_sender

            try:
                domain_check_sender(subaccount=self.subaccount, environment=self.environment, from_domain=domain)
                self.checked_domains[domain] = None
            except ApplicationError as exc:
                self.checked_domains[domain] = exc
        error = self.checked_domains[domain]
        if error is not None:
            raise error

    def load_suppressions(self, requests: list[SendRequest]) -> None:
        addresses = {a.key for r in requests for a in (*r.to, *r.cc, *r.bcc)}
        self.suppressed = suppressed_addresses(subaccount_id=self.subaccount.pk, addresses=addresses)


@dataclass(frozen=True)
class _Content:
    subject: str | None
    html: str | None
    text: str | None
    template_id: str = ""
    template_version: int | None = None


def _content(context: _SendContext, request: SendRequest) -> _Content:
    """The request's own subject and bodies, or its template rendered with its variables. The
    request is left as it is: a send prepared again (``email_send``) renders it again."""
    if request.template_id is None:
        return _Content(request.subject, request.html, request.text)
    from templates_app.services import template_render_for_send

    rendered = template_render_for_send(subaccount=context.subaccount, template_ref=request.template_id,
                                        variables=request.variables, subject_override=request.subject)
    return _Content(rendered.subject, rendered.html, rendered.text, rendered.template_id, rendered.template_version)


def _recipients(request: SendRequest, suppressed_set: set[str]) -> tuple[list[dict], list[str]]:
    rows, suppressed, seen = [], [], set()
    for kind, addresses in ((RecipientKind.TO, request.to), (RecipientKind.CC, request.cc),
                            (RecipientKind.BCC, request.bcc)):
        for address in addresses:
            if address.key in seen:
                continue  # one delivery per address, whichever field named it first
            seen.add(address.key)
            is_suppressed = address.key in suppressed_set
            if is_suppressed:
                suppressed.append(address.key)
            rows.append({"kind": kind, "address": address.key, "display_name": address.name,
                         "suppressed": is_suppressed})
    return rows, suppressed


def _headers(addresses: list[Address]) -> list[str]:
    return [a.header for a in addresses]


def _prepare(context: _SendContext, request: SendRequest, now: datetime) -> PreparedEmail:
    context.check_domain(request.sender.domain)
    recipients, suppressed = _recipients(request, context.suppressed)
    to_keys = {a.key for a in request.to}
    if to_keys and to_keys <= set(suppressed):
        raise RecipientSuppressed(
            "Every 'to' recipient is on the suppression list.",
            details={"to": [f"{address} is suppressed." for address in sorted(to_keys)]},
        )
    content = _content(context, request)
    subaccount = context.subaccount
    public_id = new_public_id("msg")
    scheduled = request.scheduled_at is not None
    tracking = context.tracking_options(request)
    tracked = tracked_html(html=content.html, email_public_id=public_id, options=tracking)
    values = dict(
        public_id=public_id, account_id=subaccount.account_id, subaccount_id=subaccount.pk,
        environment=context.environment, status=EmailStatus.SCHEDULED if scheduled else EmailStatus.QUEUED,
        from_header=request.sender.header, from_address=request.sender.address,
        from_domain=request.sender.domain, to=_headers(request.to), cc=_headers(request.cc),
        bcc=_headers(request.bcc), reply_to=_headers(request.reply_to), subject=content.subject or "",
        html=tracked.html if tracked else content.html, source_html=content.html if tracked else None,
        text=content.text, headers=request.headers, tags=request.tags,
        tags_index="," + ",".join(request.tags) + "," if request.tags else "", metadata=request.metadata,
        template_id=content.template_id, template_version=content.template_version,
        track_opens=tracking.track_opens, track_clicks=tracking.track_clicks,
        unsubscribe=request.unsubscribe, message_id=f"<{public_id}@{request.sender.domain}>",
        scheduled_at=request.scheduled_at, next_attempt_at=request.scheduled_at or now,
        enqueued_at=None if scheduled else now, created_at=now, updated_at=now,
    )
    attachments = [{"filename": a.filename, "content_type": a.content_type, "size": len(a.content),
                    "content": a.content} for a in request.attachments]
    return PreparedEmail(values=values, recipients=recipients, attachments=attachments, subaccount=subaccount,
                         suppressed=suppressed, tracked_links=tracked.links if tracked else [])


def _store(prepared: list[PreparedEmail], *, live: bool, now: datetime) -> None:
    emails_store(prepared, live=live, now=now)
    queued = [p.values["id"] for p in prepared if p.values["status"] == EmailStatus.QUEUED]
    if queued:
        transaction.on_commit(lambda: dispatch_wake(queued))


def enqueue_dispatch(email_ids: list[int]) -> None:
    """Publish dispatch tasks; a lost publish is harmless because the sweeper finds the rows."""
    from emails.tasks import dispatch_emails

    for start in range(0, len(email_ids), DISPATCH_CHUNK):
        try:
            dispatch_emails.delay(email_ids[start:start + DISPATCH_CHUNK])
        except Exception:  # broker down: the rows stay queued and the sweeper publishes them later
            unpublished = email_ids[start:]
            logger.warning("Could not publish dispatch for %d emails; the sweeper will", len(unpublished),
                           exc_info=True)
            _mark_unpublished(unpublished)
            return  # the next chunks would wait for the same dead broker


def dispatch_wake(email_ids: list[int]) -> None:
    """Make sure a ``dispatch_due`` task claims these committed rows soon (emails/services/wake.py)."""
    _waker.wake(email_ids)


def _publish_dispatch_due(email_ids: list[int]) -> None:
    from emails.tasks import dispatch_due

    try:
        dispatch_due.delay()
    except Exception:  # broker down: the rows stay queued and the sweeper publishes them later
        logger.warning("Could not publish dispatch for %d emails; the sweeper will", len(email_ids), exc_info=True)
        _mark_unpublished(email_ids)


_waker = Waker(_publish_dispatch_due)


def _mark_unpublished(email_ids: list[int]) -> None:
    """Clear ``enqueued_at`` so the sweeper's next run publishes these rows again, instead of
    waiting ``MAILROOM_SEND_REPUBLISH_AFTER_SECONDS`` for a task we know was never sent."""
    try:
        Email.objects.filter(pk__in=email_ids, status=EmailStatus.QUEUED).update(enqueued_at=None)
    except Exception:  # the rows are still queued: the sweeper finds them, only later
        logger.warning("Could not mark %d emails unpublished", len(email_ids), exc_info=True)


DISPATCH_CHUNK = 50


# How often a send is prepared again because the suppression list changed under it; each
# retry follows a change to the very addresses being sent to, so a third is all but unheard of.
MAX_SUPPRESSION_RETRIES = 3


def _suppression_conflict() -> Conflict:
    return Conflict("The suppression list of these recipients kept changing while the email was being "
                    "accepted; retry.")


def email_send(*, subaccount: SubAccount, environment: str, data) -> Email:
    """Accept one email; raises an ApplicationError (nothing stored) when it cannot be sent.

    Prepared as if no recipient were suppressed: the store checks the suppression list in the
    same statement and, when it suppresses any of them, writes nothing and says which; the
    email is then prepared again with them (and refused when every ``to`` is suppressed).
    """
    now = timezone.now()
    request = send_request_parse(data, now=now)
    context = _SendContext(subaccount, environment)
    live = environment == Environment.LIVE
    for _ in range(MAX_SUPPRESSION_RETRIES + 1):
        prepared = _prepare(context, request, now)
        if live and quota_remaining(account=subaccount.account) == 0:
            raise QuotaExceeded(details={"quota": [_quota_message(subaccount)]})
        try:
            _store([prepared], live=live, now=now)
        except SuppressionsChanged as changed:
            context.suppressed = changed.suppressed
            continue
        return prepared.email
    raise _suppression_conflict()


def _quota_message(subaccount: SubAccount) -> str:
    plan = subaccount.account.plan
    return f"The {plan.name} plan's {plan.monthly_email_quota} emails for this month are used up."


def _store_within_quota(subaccount: SubAccount, environment: str, prepared: list, now: datetime) -> list:
    """Store as many items as the quota allows, in order; returns the stored ones."""
    live = environment == Environment.LIVE
    remaining = quota_remaining(account=subaccount.account) if live else None
    accepted = prepared if remaining is None else prepared[:remaining]
    if accepted:
        _store([p for _, p in accepted], live=live, now=now)
    return accepted


def _error_item(index: int, error: ApplicationError) -> dict:
    return {"index": index, "error": {"code": error.code, "message": error.message, "details": error.details}}


def email_send_batch(*, subaccount: SubAccount, environment: str, items: list) -> list[dict]:
    """Accept up to 500 emails, each validated on its own; one result per item, in order.

    The suppression list is read first (a batch's recipients are many, so some are likely
    suppressed); should it change before the store, the batch is prepared again with it.
    """
    now = timezone.now()
    context = _SendContext(subaccount, environment)
    results: list[dict | None] = [None] * len(items)
    parsed: list[tuple[int, SendRequest]] = []
    for index, item in enumerate(items):
        try:
            parsed.append((index, send_request_parse(item, now=now)))
        except ApplicationError as exc:
            results[index] = _error_item(index, exc)
    context.load_suppressions([request for _, request in parsed])
    for _ in range(MAX_SUPPRESSION_RETRIES + 1):
        prepared: list[tuple[int, PreparedEmail]] = []
        for index, request in parsed:
            try:
                prepared.append((index, _prepare(context, request, now)))
            except ApplicationError as exc:
                results[index] = _error_item(index, exc)
        try:
            accepted = _store_within_quota(subaccount, environment, prepared, now)
        except SuppressionsChanged as changed:
            context.suppressed = changed.suppressed
            continue
        break
    else:
        raise _suppression_conflict()
    for index, _ in prepared[len(accepted):]:
        results[index] = _error_item(index, QuotaExceeded(details={"quota": [_quota_message(subaccount)]}))
    for index, item in accepted:
        results[index] = {"index": index, "id": item.values["public_id"], "status": item.values["status"]}
    return results
