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


@pytest.mark.parametrize("text", ["", "a", "ab", "1", "<script>", "👍 ", " ", "\u200d", "🏽"])
def test_invalid_emoji(text: str) -> None:
    with pytest.raises(ValidationFailed):
        check_emoji(text)


def test_content_limits() -> None:
    assert check_content("x" * 10, max_chars=10) == "x" * 10
    for bad in ("", "   ", "x" * 11, "a\x00b"):
        with pytest.raises(ValidationFailed):
            check_content(bad, max_chars=10)
