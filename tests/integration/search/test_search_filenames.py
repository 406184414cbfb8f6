"""Search by file name and plain-text snippets (issue #20, defect 8), on both databases:
a message is found by the names of its files while they are attached, never after the
message or the conversation is deleted, and snippets carry no Markdown."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parley.container import Container
from parley.services import search_sqlite
from parley.services.search_postgres_terms import TermConditions
from parley.services.search_query import SearchFilters, parse_query
from parley.store.tables.messages import messages
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.attachment_helpers import pdf_bytes, png_bytes, upload_ok
from tests.support.chat_helpers import open_group, send
from tests.support.search_shapes import backend  # noqa: F401  (replaces conftest's: adds PostgreSQL through indexes)

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def hits(client: httpx.AsyncClient, user: UserHandle, q: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/search", params={"q": q, "limit": 50}, headers=user.headers
    )
    assert response.status_code == 200, (q, response.text)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_messages_are_found_by_their_file_names(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    outsider = await make_user(client, "eve")
    cid = (await open_group(client, alice, [bob], name="Finance"))["id"]
    budget = await upload_ok(client, alice, pdf_bytes(), "Quarterly_budget-2027.pdf")
    photo = await upload_ok(client, alice, png_bytes(), "team photo.png")
    with_files = await send(
        client, alice, cid, "numbers attached", attachment_ids=[budget["id"], photo["id"]]
    )
    minutes = await upload_ok(client, bob, pdf_bytes(), "Board minutes.pdf")
    only_file = await send(client, bob, cid, "", attachment_ids=[minutes["id"]])
    await send(client, alice, cid, "nothing to see here")
    # An upload nobody sent is not searchable, even by its uploader.
    await upload_ok(client, alice, pdf_bytes(), "secret budget draft.pdf")

    for q, expected in (
        ("budget", {with_files["id"]}),  # a word inside "Quarterly_budget-2027.pdf"
        ("2027", {with_files["id"]}),
        ("quarterly budget", {with_files["id"]}),  # every term, in the names
        ("photo", {with_files["id"]}),
        ("minutes", {only_file["id"]}),  # a message with no text at all
        ("minu*", {only_file["id"]}),
        ("inute", {only_file["id"]}),  # a substring (trigrams)
        ("numbers budget", {with_files["id"]}),  # one term in the text, one in a name
    ):
        found = await hits(client, bob, q)
        assert {h["message_id"] for h in found} == expected, q
    # The snippet of a name-only match is the name, highlighted.
    [hit] = await hits(client, bob, "minutes")
    assert hit["snippet"] == "Board minutes.pdf"
    assert hit["highlights"] == [{"start": 6, "end": 13}]
    assert await hits(client, outsider, "budget") == []

    # Deleting the message takes its files out of the index.
    deleted = await client.delete(f"/api/v1/messages/{only_file['id']}", headers=bob.headers)
    assert deleted.status_code == 200, deleted.text
    assert await hits(client, bob, "minutes") == []
    # So does deleting the conversation.
    gone = await client.delete(f"/api/v1/conversations/{cid}", headers=alice.headers)
    assert gone.status_code == 204, gone.text
    assert await hits(client, alice, "budget") == []


async def test_snippets_are_plain_text(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    cid = (await open_group(client, alice, [bob], name="Docs"))["id"]
    await send(client, alice, cid, "Read **the release notes** in [our wiki](https://wiki.example/x) `now`")
    [hit] = await hits(client, bob, "release")
    assert hit["snippet"] == "Read the release notes in our wiki now"
    start, end = hit["highlights"][0]["start"], hit["highlights"][0]["end"]
    assert hit["snippet"][start:end] == "release"
    # The message itself is untouched: clients render the Markdown.
    assert hit["message"]["content"].startswith("Read **the release notes**")


async def test_file_name_queries_use_the_name_indexes(
    client: httpx.AsyncClient, container: Container
) -> None:
    """PostgreSQL: the name match is written as the indexed expressions exactly (words and
    trigrams of migration 0007); SQLite: through the FTS5 name tables."""
    alice = await make_user(client, "alice")
    db = container.db
    terms = parse_query("quarterly").terms
    if db.is_sqlite:
        statement = search_sqlite.partial_statement(terms, alice.id, SearchFilters(), None, None, 21, frozenset())
    else:  # the term in the shape that reads the indexes
        condition = TermConditions.of(terms).through_indexes([], partial_only=False)
        statement = select(messages.c.id).where(condition)
    sql = str(statement.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with db.read() as conn:
        if db.is_sqlite:
            lines = [str(r[-1]) for r in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert any("attachment_names_fts VIRTUAL TABLE" in line for line in lines), lines
            assert any("attachment_names_fts_trigram VIRTUAL TABLE" in line for line in lines), lines
            assert not any(line == "SCAN messages" for line in lines), lines
        else:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            text = "\n".join(str(r[0]) for r in await conn.exec_driver_sql("EXPLAIN " + sql))
            assert "ix_attachments_name_words" in text, text
            assert "ix_attachments_name_trigrams" in text, text
