"""One private RabbitMQ for the whole eventd test session (it takes seconds to start),
and eventd processes and consumers that are cleaned up after each test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventd_harness import PREFIXES, Consumer, Eventd, RabbitMQ
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


@pytest.fixture
def eventds() -> Iterator[Callable[..., Eventd]]:
    """Start nefeli-eventd processes; whatever still runs at the end is killed."""
    started: list[Eventd] = []

    def start(*args: Any, **kwargs: Any) -> Eventd:
        e = Eventd(*args, **kwargs)
        started.append(e)
        return e.start()

    yield start
    for e in started:
        e.kill()


@pytest.fixture
async def consumers(rabbitmq: RabbitMQ) -> AsyncIterator[Callable[..., Awaitable[Consumer]]]:
    """Dispatcher-like consumers on the session's broker, closed at the end."""
    made: list[Consumer] = []

    async def start(tag: str, prefixes: tuple[str, ...] = PREFIXES) -> Consumer:
        c = Consumer(rabbitmq.url, tag)
        made.append(c)
        return await c.start(prefixes)

    yield start
    for c in made:
        await c.close()
