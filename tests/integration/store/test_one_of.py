"""``store.one_of`` selects exactly what an expanding ``IN`` selects — empty lists, repeated
values, text that needs escaping in JSON — with one SQL text whatever the list's length,
on SQLite (``json_each``) and PostgreSQL (``= ANY``)."""

from __future__ import annotations

import secrets

from sqlalchemy import Column, Connection, MetaData, String, Table, bindparam, event, select

from parley.store.db import Database
from parley.store.one_of import one_of

VALUES = ["plain", 'quote " and \\ backslash', "tab\tand\nnewline", "emoji 🦜 ü", "%_ like chars", ""]

LISTS = [[], ["plain"], ["missing"], VALUES, VALUES[::-1] + VALUES, ["emoji 🦜 ü", "missing", "plain"]]


async def test_one_of_selects_what_in_selects_with_one_statement_text(database_url: str) -> None:
    metadata = MetaData()
    table = Table(f"one_of_probe_{secrets.token_hex(4)}", metadata, Column("id", String(40), primary_key=True))
    stable = select(table.c.id).where(one_of(table.c.id, "ids")).order_by(table.c.id)
    expanding = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))).order_by(table.c.id)

    def run(conn: Connection) -> tuple[list[list[str]], list[list[str]], set[str]]:
        metadata.create_all(conn)
        conn.execute(table.insert(), [{"id": value} for value in VALUES])
        texts: set[str] = set()

        def record(*args: object) -> None:
            texts.add(str(args[2]))  # the SQL the driver got

        event.listen(conn, "before_cursor_execute", record)
        ours = [list(conn.scalars(stable, {"ids": ids})) for ids in LISTS]
        event.remove(conn, "before_cursor_execute", record)
        theirs = [list(conn.scalars(expanding, {"ids": ids})) for ids in LISTS]
        metadata.drop_all(conn)
        return ours, theirs, texts

    db = Database(database_url, pool_size=1)
    try:
        ours, theirs, texts = await db.write(run)
    finally:
        await db.dispose()
    assert ours == theirs
    assert ours[0] == [] and ours[2] == [] and ours[1] == ["plain"]
    assert sorted(ours[3]) == sorted(VALUES) and ours[4] == ours[3]  # repeats select once
    assert len(texts) == 1, texts
