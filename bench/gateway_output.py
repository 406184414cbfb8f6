"""Where the gateway benchmark reports while it runs: timestamped progress lines on stderr
(stdout carries the JSON result) and files (profiles, kept logs) under ``bench/results/``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
