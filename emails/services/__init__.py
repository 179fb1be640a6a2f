"""Email write paths. Each module holds one stage; import from here."""

from emails.services.accept import email_send, email_send_batch, enqueue_dispatch
from emails.services.dispatch import email_claim, email_dispatch
from emails.services.events import (
    email_event_record,
    email_events_fan_out,
    email_events_fan_out_pending,
    email_events_record,
)
from emails.services.idempotency import idempotent
from emails.services.lifecycle import email_cancel, email_reschedule, email_resend
from emails.services.quota import quota_consume, quota_used
from emails.services.suppressions import suppressed_addresses, suppression_add, suppression_delete
from emails.services.sweep import email_sweep

__all__ = [
    "email_send", "email_send_batch", "enqueue_dispatch", "email_claim", "email_dispatch",
    "email_event_record", "email_events_fan_out", "email_events_fan_out_pending", "email_events_record", "idempotent", "email_cancel", "email_reschedule",
    "email_resend", "quota_consume", "quota_used", "suppressed_addresses", "suppression_add",
    "suppression_delete", "email_sweep",
]
