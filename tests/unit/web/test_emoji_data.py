"""The vendored emoji table (``web/static/emoji/data.json``, made by
``scripts/update_emoji_data.py``): its shape, its licence, and that the server accepts the
emoji in it as reactions — all but a dozen punctuation-like symbols shown as emoji with
U+FE0F (‼️ ⁉️ ↔️ ℹ️ …), which today's reaction check (symbols of category So only) refuses;
the reaction check of issue #14 (the whole Unicode emoji set) is to accept them too."""

from __future__ import annotations

import json

from parley.errors import ValidationFailed
from parley.services.markup import check_emoji
from tests.support.paths import REPO

EMOJI_DIR = REPO / "src" / "parley" / "web" / "static" / "emoji"


def test_the_table_is_complete_and_every_emoji_is_a_valid_reaction() -> None:
    table = json.loads((EMOJI_DIR / "data.json").read_text(encoding="utf-8"))
    assert "emojibase-data" in table["source"]
    assert "MIT License" in (EMOJI_DIR / "LICENSE.txt").read_text()
    rows = table["emoji"]
    assert len(rows) > 1800
    assert len(table["groups"]) == 9
    shortcodes: dict[str, str] = {}
    refused = []
    for emoji, label, group, codes, keywords in rows:
        try:
            assert check_emoji(emoji) == emoji, (emoji, label)
        except ValidationFailed:
            refused.append(emoji)
        assert 0 <= group < len(table["groups"])
        assert isinstance(label, str) and label
        assert all(isinstance(k, str) for k in keywords)
        for code in codes:
            shortcodes.setdefault(code, emoji)
    # The picker offers only what the server accepts as a reaction, unchanged.
    assert refused == []
    by_emoji = {row[0]: row for row in rows}
    # Slack's and GitHub's names, and the forms the quick reactions have always used.
    assert shortcodes["+1"] == shortcodes["thumbsup"] == "👍"
    assert shortcodes["tada"] == "🎉"
    assert shortcodes["joy"] == "😂"
    assert shortcodes["heart"] == "❤️"  # text-default characters keep U+FE0F
    assert "👍\ufe0f" not in by_emoji  # emoji-default ones never get it
    assert len(by_emoji) == len(rows)
