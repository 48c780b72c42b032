"""Progress on stderr: a tqdm bar on a terminal; plain lines otherwise (a log, a pipe,
a CI job), one per tenth of a transfer and only for large ones; nothing with --quiet."""

from __future__ import annotations

import sys
from typing import Any, TextIO

#: transfers smaller than this get no plain progress lines (their command's own
#: one-line summary says enough)
PLAIN_MIN = 32 << 20
PLAIN_STEPS = 10


class Bar:
    """A byte counter with an optional tqdm bar or plain lines; ``n`` always counts."""

    def __init__(self, desc: str, total: int | None, enabled: bool, stream: TextIO | None = None) -> None:
        self.n = 0
        self._bar: Any = None
        self._desc = desc
        self._total = total
        self._stream = stream or sys.stderr
        self._plain = False
        self._shown = 0  # tenths already printed, in plain mode
        if enabled and not self._stream.isatty():
            self._plain = True
        elif enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                desc=desc, total=total, unit="B", unit_scale=True, unit_divisor=1024, file=self._stream, leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._plain:
            self._line()

    def set_total(self, total: int) -> None:
        self._total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def _line(self) -> None:
        total = self._total
        if not total or total < PLAIN_MIN:
            return
        step = min(PLAIN_STEPS, self.n * PLAIN_STEPS // total)
        if step > self._shown:
            self._shown = step
            print(f"{self._desc}: {step * 100 // PLAIN_STEPS}% ({human(self.n)} of {human(total)})",
                  file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def human(n: float, decimals: int = 1) -> str:
    """A byte count in binary units: whole bytes, then `decimals` digits."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{decimals}f} {unit}"
        n /= 1024
    return f"{n:.{decimals}f} TiB"  # pragma: no cover - the loop always returns
