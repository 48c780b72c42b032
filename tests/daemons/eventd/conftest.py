"""One private RabbitMQ for the whole eventd test session (it takes seconds to start)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventd_harness import RabbitMQ
from peers import require_program


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    require_program("rabbitmq-server", "rabbitmqctl")
    base = Path(tempfile.mkdtemp(prefix="nefeli-rabbitmq-"))
    broker = RabbitMQ(base)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)
