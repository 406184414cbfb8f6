"""Message text rules: limits, @mentions, and what counts as an emoji reaction.

Text is stored exactly as typed (Markdown subset: bold, italic, strike, inline code, code
blocks, links, @mentions); clients render it safely. The server only validates it, extracts
mentions, and — for search snippets, which are plain text — takes the markup out
(``plain_text``, the twin of the web client's ``plainText``).
"""

from __future__ import annotations

import re
import unicodedata

import emoji as emoji_data

from parley.errors import ValidationFailed

# "@name" not preceded by a word character or another "@" (so e-mail addresses don't count).
MENTION_PATTERN = re.compile(r"(?<![\w@])@([A-Za-z0-9_.-]{3,32})")
# Code blocks and inline code: nothing written inside them is a mention or a link.
CODE_SPANS = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
# The longest emoji sequence in the Unicode data is 10 code points (a kiss with skin tones);
# anything longer is refused before the lookup.
MAX_REACTION_CODEPOINTS = 16
CLIENT_MSG_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def check_content(content: str, *, max_chars: int, allow_empty: bool = False) -> str:
    """The text to store; ``ValidationFailed`` on ``content`` when empty or too long."""
    if "\x00" in content:
        raise ValidationFailed.field("content", "must not contain NUL characters")
    if len(content) > max_chars:
        raise ValidationFailed.field("content", f"must be at most {max_chars} characters")
    if not content.strip() and not allow_empty:
        raise ValidationFailed.field("content", "must not be empty")
    return content


_CODE_BLOCK = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_LINK = re.compile(r"\[([^\[\]\n]+)\]\(\s*[^()\s]+\s*\)")
_MARKERS = re.compile(r"\*\*|__|~~|`")
_EMPHASIS = re.compile(r"(^|\s)[*_](\S[^*_\n]*?\S|\S)[*_](?=\s|$|[.,!?])")
_SPACES = re.compile(r"\s+")


def plain_text(content: str) -> str:
    """The text as read, without Markdown: code fences and inline markers dropped, links
    shown by their text, whitespace collapsed (``**bold** [docs](https://x)`` → ``bold docs``)."""
    text = _CODE_BLOCK.sub(r"\1", content)
    text = _LINK.sub(r"\1", text)
    text = _MARKERS.sub("", text)
    text = _EMPHASIS.sub(r"\1\2", text)
    return _SPACES.sub(" ", text).strip()


def check_client_msg_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not CLIENT_MSG_ID_PATTERN.fullmatch(value):
        raise ValidationFailed.field(
            "client_msg_id", "must be 1-64 characters of letters, digits, '.', '_', ':' or '-'"
        )
    return value


def mentioned_usernames(content: str) -> set[str]:
    """Lower-cased usernames written as ``@name``, outside inline code and code blocks."""
    if "@" not in content:  # most messages: no regex at all
        return set()
    without_code = CODE_SPANS.sub(" ", content)
    return {match.lower().rstrip(".-") for match in MENTION_PATTERN.findall(without_code)}


def check_emoji(raw: str) -> str:
    """A reaction is exactly one emoji of the Unicode emoji set — one grapheme cluster:
    with its skin tone, joiners, keycap or tags — stored in its fully-qualified form, so
    "❤" and "❤️" are the same reaction. The set is Unicode's own emoji data (``emoji-test
    .txt``) as the ``emoji`` package ships it, kept current with each Unicode release;
    a lone component (a skin tone by itself) is not a reaction."""
    text = unicodedata.normalize("NFC", raw)
    if len(text) > MAX_REACTION_CODEPOINTS or emoji_data.EMOJI_DATA.get(text, {}).get(
        "status", emoji_data.STATUS["component"]
    ) == emoji_data.STATUS["component"]:
        raise ValidationFailed.field("emoji", "must be a single emoji")
    qualified = emoji_data.emojize(emoji_data.demojize(text))
    return qualified if qualified in emoji_data.EMOJI_DATA else text
