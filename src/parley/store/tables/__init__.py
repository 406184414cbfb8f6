"""Every table, as SQLAlchemy Core, one module per concept. Alembic migrations create them;
queries import each table from its concept's module.

All tables belong to the one ``MetaData`` in :mod:`parley.store.tables.metadata`; a module
adds its tables to it when imported, and :func:`parley.store.tables.catalog.complete_metadata`
imports them all (for Alembic's comparison and for tests that empty every table).
"""
