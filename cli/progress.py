"""Progress bars on stderr (tqdm), silent when stderr is not a terminal or with --quiet."""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """A byte counter with an optional tqdm bar; ``n`` always counts."""

    def __init__(self, desc: str, total: int | None, enabled: bool) -> None:
        self.n = 0
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                desc=desc, total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

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
