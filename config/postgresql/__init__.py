"""Django's PostgreSQL backend with a cheaper ``CONN_HEALTH_CHECKS`` (see ``base``)."""
