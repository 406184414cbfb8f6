"""Where things are in the checkout, for tests wherever they sit under ``tests/``."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "tests" / "support"
SCREENSHOTS = REPO / "docs" / "screenshots"
