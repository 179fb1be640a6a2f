from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction

from config.api.errors import NotFound
from emails.models import Suppression


def suppressed_addresses(*, subaccount_id: int, addresses: Iterable[str]) -> set[str]:
    """Which of these (lowercased) addresses the sub-account suppresses: one query."""
    wanted = sorted({a.lower() for a in addresses})
    if not wanted:
        return set()
    # Asked on every send: plain SQL skips the ORM's query compilation (a fifth of a send's CPU).
    table = connection.ops.quote_name(Suppression._meta.db_table)
    placeholders = ", ".join(["%s"] * len(wanted))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT address FROM {table} WHERE subaccount_id = %s AND address IN ({placeholders})",
                       [subaccount_id, *wanted])
        return {address for (address,) in cursor.fetchall()}


def suppression_add(*, subaccount_id: int, address: str, reason: str, source_email_id: str = "",
                    note: str = "") -> tuple[Suppression, bool]:
    """Idempotent: an address already suppressed keeps its first reason. Returns (row, created)."""
    address = address.lower()
    existing = Suppression.objects.filter(subaccount_id=subaccount_id, address=address).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            return Suppression.objects.create(subaccount_id=subaccount_id, address=address, reason=reason,
                                              source_email_id=source_email_id, note=note), True
    except IntegrityError:  # a concurrent add won the race
        return Suppression.objects.get(subaccount_id=subaccount_id, address=address), False


def suppression_delete(*, subaccount, ref: str) -> None:
    """``ref`` is the sup_ id or the address."""
    query = subaccount.suppressions.filter(public_id=ref) if ref.startswith("sup_") else \
        subaccount.suppressions.filter(address=ref.lower())
    deleted, _ = query.delete()
    if not deleted:
        raise NotFound("Suppression not found.")
