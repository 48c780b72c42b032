"""Shared pytest set-up for nefeli."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
for p in (str(REPO), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "nefeli", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile("ci", parent=settings.get_profile("nefeli"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "nefeli")


@pytest.fixture
def repo_root() -> Path:
    return REPO
