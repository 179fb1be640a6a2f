"""Django's PostgreSQL schema editor, without the ``LIKE`` index on public ids."""

from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor

from config.ids import PublicIdField


class DatabaseSchemaEditor(PostgresSchemaEditor):
    def _create_like_index_sql(self, model, field):
        # Django gives every indexed varchar a second, varchar_pattern_ops index so that
        # ``LIKE 'abc%'`` can use an index. Public ids are only ever matched whole (the unique
        # index serves that); the second index would cost every insert (one per email, event,
        # webhook delivery...) and help no query.
        if isinstance(field, PublicIdField):
            return None
        return super()._create_like_index_sql(model, field)
