"""A one-line progress display for long work, drawn only when stderr is a terminal.

Logs stay clean in files and CI (HugeCTR's `Iter:` lines are the record there); at a terminal the
user sees steps, rate and the latest loss while training runs.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """`Progress(total, label)`; call `update(done, **values)` then `close()`. total=None: unknown length."""

    def __init__(self, total: int | None, label: str, *, min_interval: float = 0.2, enabled: bool | None = None):
        self.total, self.label = total, label
        self.min_interval = min_interval
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = self._last = time.perf_counter()
        self.drawn = False

    def update(self, done: int, **values: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.min_interval and done != self.total:
            return
        self._last = now
        rate = done / max(now - self.start, 1e-9)
        extra = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        if self.total:
            width = 24
            filled = int(width * done / self.total)
            bar = "#" * filled + "." * (width - filled)
            text = f"\r{self.label} [{bar}] {done}/{self.total} {rate:,.1f} it/s {extra}"
        else:
            text = f"\r{self.label} {done} it {rate:,.1f} it/s {extra}"
        sys.stderr.write(text)
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False
