"""Message text rules: mentions, emoji reactions, limits."""

from __future__ import annotations

import pytest

from parley.errors import ValidationFailed
from parley.services.markup import check_content, check_emoji, mentioned_usernames


def test_mentions_skip_code_and_email() -> None:
    text = "@alice and @Bob. but not `@carol`, ```\n@dave\n``` nor eve@example.com"
    assert mentioned_usernames(text) == {"alice", "bob"}


@pytest.mark.parametrize("emoji", ["👍", "👍🏽", "❤️", "🇫🇷", "👨‍👩‍👧", "1️⃣", "#️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"])
def test_valid_emoji(emoji: str) -> None:
    assert check_emoji(emoji) == emoji


@pytest.mark.parametrize(
    "text",
    [
        "", "a", "ab", "1", "<script>", "👍 ", " ", "\u200d", "🏽",
        "\ufffd",  # what a broken UTF-8 sequence decodes to
        "👍" * 8, "👍👎", "🇫🇷🇩🇪", "©©",  # runs of emoji are not one reaction
        "\u2764\u200d", "\U0001f468\u200d",  # a joiner with nothing after it
        "\u00a9\u0301", "★", "☃︎",  # symbols that are not emoji, modifiers on them
        "\U000e0067\U000e0062", "\ud83d",  # bare tags, an unpaired surrogate
    ],
)  # fmt: skip
def test_invalid_emoji(text: str) -> None:
    with pytest.raises(ValidationFailed):
        check_emoji(text)


@pytest.mark.parametrize(("typed", "stored"), [("❤", "❤️"), ("☺", "☺️"), ("1⃣", "1️⃣")])
def test_emoji_are_stored_fully_qualified(typed: str, stored: str) -> None:
    """The same emoji typed with or without its emoji-presentation selector is one reaction."""
    assert check_emoji(typed) == stored


def test_content_limits() -> None:
    assert check_content("x" * 10, max_chars=10) == "x" * 10
    for bad in ("", "   ", "x" * 11, "a\x00b"):
        with pytest.raises(ValidationFailed):
            check_content(bad, max_chars=10)
