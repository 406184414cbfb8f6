"""Search boxes typed into at random: every character the query parser treats specially,
words FTS5 and tsquery take as operators, scripts without spaces, combining marks, emoji
sequences and a NUL — for the tests that no input breaks the parser or the SQL it makes."""

from __future__ import annotations

import random

ALPHABET = list('"*():^-+\'%_\\/;,.!?&|<>{}[]~`@#$= \t\n') + list("abcXYZ019") + [
    "NEAR", "OR", "AND", "NOT", "東", "京", "タ", "п", "Ж", "é", "\u0301", "\u200d", "🎉",
    "👩‍💻", "\ufe0f", "\x00", "\u200b", "ß", "İ",
]


def random_queries(count: int, seed: int = 7) -> list[str]:
    """``count`` queries of 1-24 pieces, the same ones for the same seed."""
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(count)]
