"""HugeCTR's log format, so that scripts and tools that read HugeCTR logs read ctrflow's.

Every line is `[HCTR][HH:MM:SS][INFO][RK<rank>][main]: <message>`; banners have no prefix
(semantics spec §7.1). Numbers use C++ stream formatting (6 significant digits) via `cpp_number`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BANNER_WIDTH = 115  # the banners quoted in semantics spec §7 are 115 characters


class HctrLog:
    """Writes HugeCTR-style log lines for one rank (only rank 0 prints by default)."""

    def __init__(self, rank: int = 0, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.rank = rank
        self.stream = stream
        self.enabled = enabled and rank == 0

    def _write(self, text: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stdout
            stream.write(text + "\n")
            stream.flush()

    def info(self, message: str) -> None:
        self._write(f"[HCTR][{time.strftime('%H:%M:%S')}][INFO][RK{self.rank}][main]: {message}")

    def warning(self, message: str) -> None:
        self._write(f"[HCTR][{time.strftime('%H:%M:%S')}][WARNING][RK{self.rank}][main]: {message}")

    def banner(self, title: str) -> None:
        self._write(banner(title))

    def raw(self, text: str) -> None:
        self._write(text)


def banner(title: str) -> str:
    """`====...Title...====`, 115 characters wide, the title centred as HugeCTR pads it."""
    left = (BANNER_WIDTH - len(title)) // 2
    return "=" * left + title + "=" * (BANNER_WIDTH - left - len(title))


def cpp_number(value: float) -> str:
    """C++ `ostream << value` with default precision (6 significant digits, like %g)."""
    return f"{value:g}"
