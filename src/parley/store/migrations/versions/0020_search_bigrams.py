"""search: a bigram index for short substrings in scripts without spaces

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 12:30:00

PostgreSQL only. A search term of one or two characters in a script written without spaces
(CJK, Thai, ...) or with emoji — "東京", "😀😀" — is a substring the trigram index cannot
hold, so it was matched by ILIKE on every message of the caller's conversations: at a
million messages, 1.1 s for one that is rare (EXPLAIN ANALYZE, 100k rows read), and a walk
of the newest ones (``parley.services.search_postgres``) only helps when it is common.

``parley_search_bigrams(text)`` lists the distinct two-character substrings of the
lower-cased text that contain at least one such character (the ranges of
``parley.services.search_bigrams``: what ``search_query`` calls unsegmented or a
pictograph, from Unicode 14), and a GIN index over
it finds the messages holding a term's bigrams; ILIKE still checks each one found (ILIKE
lower-cases both sides, as the function does, so the index never misses one). Text
without such characters costs the function one regular-expression test and indexes
nothing. Search asks the function for the term's own bigrams too, so the two sides always
agree on what is indexed.

Nothing to do on SQLite: its LIKE runs on the caller's conversations, as before.
"""

from __future__ import annotations

from alembic import op

# The characters a bigram must contain to be indexed: SQLite's bigram keys (0021) use the
# same table, so both databases index the same pairs.
from parley.services.search_bigrams import INDEXED_CHARACTERS

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _character_class() -> str:
    def escape(code: int) -> str:
        return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"

    return "[" + "".join(f"{escape(a)}-{escape(b)}" for a, b in INDEXED_CHARACTERS) + "]"


def _upgrade_statements() -> list[str]:
    characters = _character_class()
    return [
        f"""
        CREATE FUNCTION parley_search_bigrams(content text) RETURNS text[]
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
        DECLARE
            lowered text;
        BEGIN
            IF content !~ '{characters}' THEN
                RETURN '{{}}';
            END IF;
            lowered := lower(content);
            RETURN ARRAY(
                SELECT DISTINCT substr(lowered, i, 2)
                FROM generate_series(1, char_length(lowered) - 1) AS i
                WHERE substr(lowered, i, 2) ~ '{characters}'
            );
        END
        $$
        """,
        # Indexed rows only, like the word and trigram indexes (migration 0017).
        """
        CREATE INDEX ix_messages_search_bigrams ON messages
            USING gin (parley_search_bigrams(content)) WHERE search_vector IS NOT NULL
        """,
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _upgrade_statements():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search_bigrams")
    op.execute("DROP FUNCTION IF EXISTS parley_search_bigrams(text)")
