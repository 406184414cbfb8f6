"""Progress of a long command (``parley backup``, ``parley restore``) on stderr: a one-line
bar on a terminal, one plain line per finished step otherwise (logs, systemd's journal)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Progress:
    # Looked up when made, not when this module was imported (tests replace sys.stderr).
    out: TextIO = field(default_factory=lambda: sys.stderr)

    def show(self, label: str, done: int, total: int) -> None:
        """``done`` of ``total`` things, as a bar."""
        if total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        if self.out.isatty():
            self.out.write(f"\r{label:<10} [{bar}] {done}/{total}{end}")
        elif done >= total:
            self.out.write(f"{label}: {done}/{total}\n")
        self.out.flush()

    def count(self, label: str, done: int, *, finished: bool = False) -> None:
        """``done`` things so far of a number not known in advance (a store being listed
        while it is copied); ``finished`` once the last is done."""
        if self.out.isatty():
            end = "\n" if finished else ""
            self.out.write(f"\r{label:<10} {done}{end}")
        elif finished:
            self.out.write(f"{label}: {done}\n")
        self.out.flush()
