"""A changelist paginator that never counts millions of rows to draw a page.

Django's paginator runs ``SELECT COUNT(*)`` over the whole filtered queryset on every page.
On the emails, events and webhook tables that is a full scan. For tables PostgreSQL says are
large, this paginator

- reads the planner's row estimate (``pg_class.reltuples``, kept fresh by autovacuum's
  ANALYZE) when the list is not filtered at all, and
- counts at most ``COUNT_CAP + 1`` matching rows when it is, so a broad filter costs a
  bounded scan; the page then says "more than 10,000" and the operator narrows the filter.

Small tables, SQLite, and a table never analysed are counted exactly, as Django does.
Use it with ``show_full_result_count = False`` (that is a second full count).
"""

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Below this many rows an exact count is cheap enough for every page view.
ESTIMATE_ABOVE = 100_000
COUNT_CAP = 10_000


def estimated_rows(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the table's rows, or None (another database, never analysed)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                       [connection.ops.quote_name(queryset.model._meta.db_table)])
        row = cursor.fetchone()
    # -1 (PostgreSQL 14+) or 0: not analysed yet, so no estimate to trust.
    return row[0] if row and row[0] > 0 else None


class EstimatedCountPaginator(Paginator):
    # "estimate" (unfiltered, from reltuples), "at_least" (filtered, capped) or "" (exact)
    count_kind = ""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        estimate = estimated_rows(queryset)
        if estimate is None or estimate < ESTIMATE_ABOVE:
            return super().count
        if not queryset.query.where and not queryset.query.distinct:
            self.count_kind = "estimate"
            return estimate
        matching = queryset.order_by()[:COUNT_CAP + 1].count()
        if matching > COUNT_CAP:
            self.count_kind = "at_least"
            return COUNT_CAP
        return matching
