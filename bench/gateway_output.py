"""Where the gateway benchmark reports while it runs: timestamped progress lines on stderr
(stdout carries the JSON result) and files (profiles, kept logs) under ``bench/results/``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_result(result: dict[str, Any], path: Path | None) -> None:
    """The result as JSON: into ``path``, or on stdout."""
    text = json.dumps(result, indent=2, default=str)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    else:
        print(text)
