"""Alembic migrations; run with ``parley migrate`` (and by ``make run``)."""
