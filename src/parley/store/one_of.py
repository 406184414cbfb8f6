"""``column IN (values)`` as one statement for any number of values: ``one_of``.

SQLAlchemy's expanding ``IN`` writes one placeholder per value into the SQL text at each
execution: the statement is rendered again every time (about 5 % of the group commit's
``write_batch`` under cProfile), and each list length is a new SQL text, so the drivers'
prepared-statement caches (SQLite's 128 per connection, asyncpg's 100) miss whenever batch
sizes vary, as they do under load, and prepare again. ``one_of`` binds the whole list as
one parameter instead, so the text never changes:

- PostgreSQL: ``column = ANY($1::VARCHAR[])`` — the form PostgreSQL turns an ``IN`` list
  into anyway (the same index searches);
- SQLite: ``column IN (SELECT value FROM json_each(?))`` with the list as a JSON array —
  each value still a search of the column's index (``LIST SUBQUERY`` in the plan).

For text values (ids, usernames). An empty list matches nothing, as ``IN ()`` would.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Dialect, String, Text, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator


def one_of(column: ColumnElement[str], name: str) -> ColumnElement[bool]:
    """``column``'s value is one of the list bound as ``name`` (any sequence of str)."""
    return _OneOf(column, bindparam(name, type_=_TextList()))


class _TextList(TypeDecorator[Sequence[str]]):
    """A list of str bound as one parameter: an array on PostgreSQL, JSON text elsewhere."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String()))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Sequence[str] | None, dialect: Dialect) -> Any:
        values = list(value or ())
        return values if dialect.name == "postgresql" else json.dumps(values)


class _OneOf(ColumnElement[bool]):
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a condition itself: SQLite needs no "= 1" after it

    def __init__(self, column: ColumnElement[str], values: BindParameter[Sequence[str]]) -> None:
        self.column = column
        self.values = values

    @property
    def _from_objects(self) -> list[FromClause]:
        # The column's table is a FROM of the statement this condition is in, as it is for
        # ``column IN (...)``: a select naming no other column of it still reads from it.
        return self.column._from_objects


@compiles(_OneOf)
def _any(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY ({values})"


@compiles(_OneOf, "sqlite")
def _json_each(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"
