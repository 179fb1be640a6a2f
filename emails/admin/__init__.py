"""Operators' view of mail: emails with their timeline, events, attempts, suppressions, usage.

History is read-only here: an email, its events and its delivery attempts are what happened,
so nothing is edited or deleted; operators act through actions that call the services
(cancel, resend, remove a suppression), which the admin site audits.

Large tables (emails, events, attempts, recipients) never count every row on a page
(``EstimatedCountPaginator``), list only cheap columns, and search exact, indexed values:
"msg_..." ids, Message-IDs, recipient addresses, account / sub-account ids, sending domains.
"""

from emails.admin import emails, history, tenants  # noqa: F401 - each module registers its pages
