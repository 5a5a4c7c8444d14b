"""A tiny progress bar for long commands: drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws one line at most ten times a second; silent when the stream is not a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.width = width
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < 0.1:
            return
        self._drawn_at = now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {share:4.0%} {done}/{self.total} {note} {now - self.started:.0f}s"
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        """End the line if one was drawn, so what is printed next (a summary, an error) starts afresh."""
        if self._drawn_at:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn_at = 0.0
