"""The whole schema: the ``MetaData`` with every concept module's tables in it.

A table joins ``metadata`` when its module is imported, so a caller that needs all of them
(Alembic comparing the migrations with the tables, tests emptying every table) asks here
rather than hoping every module happened to be imported. A new concept module goes into
``CONCEPTS`` (``tests/integration/store/test_store_tables.py`` checks that none is missing).
"""

from __future__ import annotations

from importlib import import_module

from sqlalchemy import MetaData

from parley.store.tables.metadata import metadata

# The modules of ``parley.store.tables`` that define tables, one concept each.
CONCEPTS = (
    "accounts",
    "administration",
    "contacts",
    "conversations",
    "e2ee",
    "integrations",
    "lifecycle",
    "media",
    "messages",
    "notifications",
)


def complete_metadata() -> MetaData:
    """The one ``MetaData``, with the tables of every module in ``CONCEPTS`` defined on it."""
    for concept in CONCEPTS:
        import_module(f"parley.store.tables.{concept}")
    return metadata
