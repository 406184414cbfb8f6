"""Python source read as syntax trees, for the tests that check the code's layout
(``tests/unit/test_architecture.py``, ``tests/unit/test_test_layout.py``)."""

from __future__ import annotations

import ast
import gc
from pathlib import Path


def parse(path: Path) -> ast.Module:
    """The module's syntax tree, parsed with the garbage collector paused: a collection
    inside the parser that reports an unraisable warning (another test's leaked object,
    turned into an error by pytest) breaks CPython's AST constructor (``SystemError: AST
    constructor recursion depth mismatch``) and would fail a layout test for someone else's leak."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    finally:
        if enabled:
            gc.enable()
