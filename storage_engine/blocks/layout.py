"""Where the block store lives inside a node's data directory."""

from __future__ import annotations

import os
from pathlib import Path

STORE_SUBDIR = "blocks"


def store_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The block store directory for a data directory (`--data DIR`).

    DIR itself when it already is a store (has index/ and segments/), else DIR/blocks.
    """
    data = Path(data_dir)
    if (data / "index").is_dir() and (data / "segments").is_dir():
        return data
    return data / STORE_SUBDIR
