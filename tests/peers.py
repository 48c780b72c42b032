"""Gatekeeping for tests that need a real peer program or root.

Without the peer (or without root) such a test skips with a clear reason.
Under CI=true the same situation is a failure: CI installs every peer through
scripts/install-test-peers, so a missing one means the set-up is broken.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_program(*names: str) -> dict[str, str]:
    """Paths of the named programs; skip (or fail under CI) when one is absent."""
    found: dict[str, str] = {}
    for name in names:
        path = shutil.which(name)
        if path is None:
            _missing(f"needs peer program {name!r} (installed by scripts/install-test-peers as root)")
        found[name] = path  # type: ignore[assignment]
    return found


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        _missing(f"needs root: {why}")
