"""Persistence: SQLAlchemy Core tables, Alembic migrations, SQLite or PostgreSQL (DESIGN §2).

The database is the only source of truth. Services open transactions through
:class:`~parley.store.db.Database` and pass the ``AsyncConnection`` explicitly to the
query functions in this package; nothing here knows about HTTP or WebSockets.
"""
